"""Streaming dot-product unit: the MAC pattern every compute unit builds on."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyref.formats import ACC, ACT, WEIGHT


def beat_layout(lanes: int) -> data.StructLayout:
    """One input beat: ``lanes`` activation/weight pairs and the end-of-vector flag."""
    return data.StructLayout({
        "act": data.ArrayLayout(ACT.shape(), lanes),
        "weight": data.ArrayLayout(WEIGHT.shape(), lanes),
        "last": 1,
    })


class MacUnit(wiring.Component):
    """Dot products of streamed vectors, ``lanes`` multiply-accumulates per cycle.

    Each accepted beat adds ``sum(act[k] * weight[k])`` to an `ACC` accumulator; the beat
    with ``last`` set emits the total on ``o`` and clears it. Pad short vectors with zero
    pairs. The accumulator wraps like `pyref.ops.dot`. Three pipeline stages (products, lane
    sum, accumulate) keep the multipliers' outputs registered, as the ECP5 DSP blocks want,
    and keep the adder tree and the accumulator's carry chain in separate cycles.

    Parameters
    ----------
    lanes : int
        Multipliers working in parallel.

    Members
    -------
    i : In(stream.Signature(beat_layout(lanes)))
        Input beats.
    o : Out(stream.Signature(ACC.shape()))
        One dot product per vector.
    """

    def __init__(self, lanes: int = 4):
        if lanes < 1:
            raise ValueError(f"MacUnit needs lanes >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(beat_layout(lanes))),
            "o": Out(stream.Signature(ACC.shape())),
        })

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.lanes

    def elaborate(self, platform):
        m = Module()

        # One enable stalls the whole pipeline while a result waits, so no beat is lost
        # and nothing needs a skid buffer.
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)

        # Data registers need no reset; without one they can become the multipliers' own
        # output registers (scripts/netlist.py).
        products = [Signal(signed(ACT.bits + WEIGHT.bits), name=f"product{k}", reset_less=True)
                    for k in range(self.lanes)]
        lane_sum = Signal(ACC.shape())
        accumulator = Signal(ACC.shape())
        # valid and last of the beat held in the product and lane-sum stages
        product_valid, product_last = Signal(), Signal()
        sum_valid, sum_last = Signal(), Signal()

        with m.If(advance):
            for k, p in enumerate(products):
                m.d.sync += p.eq(self.i.payload.act[k] * self.i.payload.weight[k])
            m.d.sync += [product_valid.eq(self.i.valid), product_last.eq(self.i.payload.last)]

            m.d.sync += [lane_sum.eq(sum(products)),
                         sum_valid.eq(product_valid), sum_last.eq(product_last)]

            total = accumulator + lane_sum
            m.d.sync += self.o.valid.eq(sum_valid & sum_last)
            with m.If(sum_valid & sum_last):
                m.d.sync += [self.o.payload.eq(total), accumulator.eq(0)]
            with m.Elif(sum_valid):
                m.d.sync += accumulator.eq(total)
        return m
