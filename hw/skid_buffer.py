"""A stream's handshake cut by registers: the input's ready is a flip-flop."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    """Two registers between a source and a taker whose decision to take is deep logic.

    The taker's ``o.ready`` loads only this buffer's head register, not the source's
    queue; and ``i.ready`` is a register (the spare slot is empty), so no path runs from
    the taker's decision back to the source in a cycle. (The placer still sets the buffer
    anywhere between the two, often by the source: docs/results.md.) A payload a cycle
    passes while the taker keeps taking; the first arrives a cycle late.

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
        # `o` is the head; `spare` holds the payload that arrived as the taker stalled.
        spare = Signal(self.shape, reset_less=True)
        spare_full = Signal()
        head_free = ~self.o.valid | self.o.ready
        arrives = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~spare_full)
        with m.If(head_free):
            m.d.sync += [self.o.valid.eq(spare_full | arrives),
                         self.o.payload.eq(Mux(spare_full, spare, self.i.payload)),
                         spare_full.eq(0)]
        with m.Elif(arrives):
            m.d.sync += spare_full.eq(1)
        # The spare takes every payload offered while it is empty, so its enable is a
        # flip-flop's; the taker's ready reaches only the head's.
        with m.If(~spare_full):
            m.d.sync += spare.eq(self.i.payload)
        return m
