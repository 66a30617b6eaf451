"""Narrow beats gathered back into a wide stream."""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.serialiser import beat_bits


class Deserialiser(wiring.Component):
    """Gathers each ``beats`` beats into a payload, the first in its low bits (the
    `Serialiser`'s order). A payload's first beat comes in the cycle after its predecessor
    leaves: the wide register's enable then hangs on flip-flops only, not on the taker's
    ``ready``.

    Parameters
    ----------
    shape : shape-like
        The payload.
    beats : int

    Members
    -------
    i : In(stream.Signature(beat_bits(shape, beats)))
    o : Out(stream.Signature(shape))
    busy : Out(1)
        Beats of a payload are held.
    """

    def __init__(self, shape, beats: int):
        self.shape, self.beats = shape, beats
        super().__init__({
            "i": In(stream.Signature(beat_bits(shape, beats))),
            "o": Out(stream.Signature(shape)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bits = len(self.i.payload)
        held = Signal(bits * self.beats)  # beats come in at the top and move down
        got = Signal(range(self.beats + 1))
        # ``got == beats`` kept in a register: the beats' ready, and the enable of the wide
        # register they fill, then start at flip-flops, not at a compare of the count.
        full = Signal()
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~full),
                     self.busy.eq(got != 0),
                     Value.cast(self.o.payload).eq(held)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [got.eq(0), full.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(Cat(held[bits:], self.i.payload)), got.eq(got + 1),
                         full.eq(got == self.beats - 1)]
        return m
