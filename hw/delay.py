"""Delay lines for the fields that travel beside a lock-step pipeline, register copies that
cut a signal's fanout, and counters' flags kept as registers."""

from amaranth.hdl import Cat, Module, Mux, Signal, Value

#: Register attribute: synthesis keeps each such register, though others hold the same value
#: (`scripts.bitstream` marks them ``keep``, so yosys does not merge the copies back).
KEPT_COPY = "lumoe_kept_copy"


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


def kept_copies(m: Module, value, count: int, name: str, reset_less: bool = False) -> list:
    """``count`` registers of ``value`` as it was a cycle ago, kept apart in synthesis.

    Each copy drives a share of ``value``'s loads: a net to hundreds of flip-flops or block
    RAMs crosses the chip or crowds its region, where a few copies each stay local.
    """
    copies = []
    for index in range(count):
        register = Signal.like(value, name=f"{name}_copy{index}", reset_less=reset_less,
                               attrs={KEPT_COPY: 1})
        m.d.sync += Value.cast(register).eq(value)
        copies.append(register)
    return copies


def feed_apart(m: Module, port, valid, payload, name: str):
    """Drives lock-step input ``port`` with ``valid`` and ``payload`` a cycle late, from a
    kept register of its own (`kept_copies`).

    Pipelines side by side that take the same values (a lane's share of a row's constants)
    would otherwise get their first flip-flops merged by yosys into one that drives every
    lane, wherever each sits on the chip.
    """
    [held] = kept_copies(m, Cat(valid, payload), 1, name)
    m.d.comb += [port.valid.eq(held[0]), Value.cast(port.payload).eq(held[1:])]


def short_of(m: Module, count: Signal, limit: int, toward, away, name: str) -> Signal:
    """``count != limit`` as a register of its own, for a counter that steps by one toward
    ``limit`` in a cycle with ``toward`` and away from it with ``away`` (both: no step);
    it stays below ``limit`` if it starts below, else at or above it.

    The flag is worked out a cycle ahead from the counter and the steps, so whatever it
    enables (a sender's pops into a queue with that many credits, say) starts at a
    flip-flop of its own, not at a compare of a counter that may sit far away.
    """
    side = -1 if count.init < limit else 1
    flag = Signal(name=name, init=count.init != limit)
    with m.If(toward & ~away):
        m.d.sync += flag.eq(count != limit + side)
    with m.Elif(away & ~toward):
        m.d.sync += flag.eq(1)
    return flag


def wrapping_count(m: Module, shape, start, limit, step, name: str, late: bool = False):
    """A counter that goes 0, 1, ... ``limit`` - 1 and back to 0, one ``step`` at a time,
    with ``counter == 0`` and ``counter == limit - 1`` kept as registers.

    ``start`` (before ``step``) restarts it from 0 for ``limit``, the value the limit takes
    in that cycle; both are registered then, so what the first or last value decides (a
    row's end flag, say) starts at a flip-flop, not at a subtractor and a compare.

    With ``late``, the count itself (not its flags) steps a cycle after ``step``, from a
    register of that step: a decision that steps the counter then reaches only the two
    flags, wherever the count and its limit sit. Steps must then be two cycles apart or
    more.

    Returns
    -------
    counter, at_first, at_last : Signal
    """
    counter = Signal(shape, name=name)
    at_first = Signal(name=f"{name}_first", init=1)
    at_last = Signal(name=f"{name}_last")
    before_last = Signal(shape, name=f"{name}_before_last")  # limit - 2
    single = Signal(name=f"{name}_single")  # limit == 1
    if late:
        # Neither register has an enable: both copy their input in every cycle.
        counted = delayed(m, step, 1, f"{name}_counted")
        wraps = delayed(m, at_last, 1, f"{name}_wraps")  # the counted step was at the last
    else:
        counted, wraps = step, at_last
    with m.If(start):
        m.d.sync += [at_first.eq(1), before_last.eq(limit - 2), single.eq(limit == 1),
                     at_last.eq(limit == 1)]
    with m.Elif(step):
        m.d.sync += at_first.eq(at_last)
        with m.If(at_last):
            m.d.sync += at_last.eq(single)
        with m.Else():
            m.d.sync += at_last.eq(counter == before_last)
    with m.If(start):
        m.d.sync += counter.eq(0)
    with m.Elif(counted):
        m.d.sync += counter.eq(Mux(wraps, 0, counter + 1))
    return counter, at_first, at_last
