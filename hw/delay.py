"""Delay lines for the fields that travel beside a lock-step pipeline."""

from amaranth.hdl import Module, Signal, Value


def delayed(m: Module, value, cycles: int, name: str = "delayed"):
    """``value`` as it was ``cycles`` clock cycles ago (a chain of registers, reset to 0).

    Returns a signal of ``value``'s shape (a view for a layout), or ``value`` itself for 0.
    """
    for stage in range(cycles):
        register = Signal.like(value, name=f"{name}_{stage}")
        m.d.sync += Value.cast(register).eq(value)
        value = register
    return value
