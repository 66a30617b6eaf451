"""Delay lines for the fields that travel beside a lock-step pipeline."""

from amaranth.hdl import Module, Signal, Value


def delayed(m: Module, value, cycles: int, name: str = "delayed", reset_less: bool = False):
    """``value`` as it was ``cycles`` clock cycles ago (a chain of registers, reset to 0).

    Returns a signal of ``value``'s shape (a view for a layout), or ``value`` itself for 0.
    ``reset_less`` registers suit data whose value after a reset does not matter, such as a
    block RAM's read data: without the reset's logic in front of it, a register right after
    a block RAM can move into the block RAM's output register (`scripts.netlist`).
    """
    for stage in range(cycles):
        register = Signal.like(value, name=f"{name}_{stage}", reset_less=reset_less)
        m.d.sync += Value.cast(register).eq(value)
        value = register
    return value
