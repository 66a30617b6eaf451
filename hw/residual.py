"""The residual connection: two activation streams added, saturating."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import saturate
from pyref.formats import ACT


class ResidualAdd(wiring.Component):
    """``o = sat(a + b)`` lane by lane (`pyref.intmodel.residual`), one beat per cycle.

    A beat is taken from both inputs at once, into an output register.

    Parameters
    ----------
    lanes : int

    Members
    -------
    a, b : In(stream.Signature(ArrayLayout(ACT, lanes)))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes)))
    """

    def __init__(self, lanes: int):
        self.lanes = lanes
        beat = data.ArrayLayout(ACT.shape(), lanes)
        super().__init__({"a": In(stream.Signature(beat)), "b": In(stream.Signature(beat)),
                          "o": Out(stream.Signature(beat))})

    def elaborate(self, platform):
        m = Module()
        space = ~self.o.valid | self.o.ready
        take = self.a.valid & self.b.valid & space
        m.d.comb += [self.a.ready.eq(take), self.b.ready.eq(take)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += self.o.valid.eq(1)
            for k in range(self.lanes):
                m.d.sync += self.o.payload[k].eq(
                    saturate(self.a.payload[k] + self.b.payload[k], ACT))
        return m
