"""Streaming dot-product unit: the MAC pattern every compute unit builds on."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import registered_sum
from hw.delay import delayed
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
    pairs. The accumulator wraps like `pyref.ops.dot`. The pipeline registers the products
    (as the ECP5 DSP blocks want), then every level of the lane-sum tree, then the
    accumulator, so each stage holds at most one carry chain: ``2 + ceil(log2(lanes))``
    stages.

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

    @property
    def latency(self) -> int:
        """Cycles from a vector's last beat to its result: products, each level of the lane
        sum, the accumulator."""
        return 2 + (self.lanes - 1).bit_length()

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
        accumulator = Signal(ACC.shape())
        # valid and last of the beat in each stage after the inputs
        valid, last = Signal(name="product_valid"), Signal(name="product_last")

        with m.If(advance):
            for k, p in enumerate(products):
                m.d.sync += p.eq(self.i.payload.act[k] * self.i.payload.weight[k])
            m.d.sync += [valid.eq(self.i.valid), last.eq(self.i.payload.last)]

            # The lane sum as a tree with a register after each level: one adder per stage.
            # Inside `advance`, so the tree and the flags beside it stall together.
            lane_sum, levels = registered_sum(m, products, "sum")
            sum_valid = delayed(m, valid, levels, "sum_valid")
            sum_last = delayed(m, last, levels, "sum_last")

            total = accumulator + lane_sum
            m.d.sync += self.o.valid.eq(sum_valid & sum_last)
            with m.If(sum_valid & sum_last):
                m.d.sync += [self.o.payload.eq(total), accumulator.eq(0)]
            with m.Elif(sum_valid):
                m.d.sync += accumulator.eq(total)
        return m
