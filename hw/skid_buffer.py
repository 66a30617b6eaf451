"""A stream's handshake cut by registers: the input's ready is a flip-flop, and the taker's
ready enables no payload register."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    """Two payload registers between a source and a taker whose decision to take is deep
    logic, used in turn (a two-entry queue).

    ``i.ready`` is a register (an entry is free), so no path runs from the taker's decision
    back to the source in a cycle. The decision loads only the read pointer and the two
    fill flags: a payload register loads whenever its entry is free and next to be
    written, so its enable is a flip-flop's, wherever the placer sets the buffer (a taker's
    decision used to cross the unit to a head register's wide enable: docs/results.md).
    ``o.payload`` is a multiplexer over the two. A payload a cycle passes while the taker
    keeps taking; the first arrives a cycle late.

    Parameters
    ----------
    shape : shape-like
        The payload.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        entries = [Signal(self.shape, name=f"entry{k}", reset_less=True) for k in range(2)]
        write_at, read_at, full = Signal(), Signal(), Signal()
        arrives = self.i.valid & ~full
        taken = self.o.valid & self.o.ready
        m.d.comb += [self.i.ready.eq(~full),
                     self.o.payload.eq(Mux(read_at, entries[1], entries[0]))]
        for index, entry in enumerate(entries):
            with m.If(~full & (write_at == index)):
                m.d.sync += entry.eq(self.i.payload)
        with m.If(arrives):
            m.d.sync += write_at.eq(~write_at)
        with m.If(taken):
            m.d.sync += read_at.eq(~read_at)
        # `o.valid` holds one entry or more, `full` two.
        with m.If(arrives & ~taken):
            m.d.sync += [self.o.valid.eq(1), full.eq(self.o.valid)]
        with m.Elif(taken & ~arrives):
            m.d.sync += [self.o.valid.eq(full), full.eq(0)]
        return m
