"""The expert combine's read-out: a row chunk of exact sums, rounded once to activations."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import saturate
from hw.delay import delayed
from pyref.formats import ACT, PROB


class CombineRounding(wiring.Component):
    """Lock-step (`hw.xls_pipe.lockstep`): for each input, ``sums`` as it is `data_stage`
    cycles later, rounded by ``2^-PROB.frac`` and saturated to `ACT`, out after `latency`.

    The input carries no data: it marks the cycle the chunk's read address is presented,
    and the sums arrive on ``sums`` from the parent's registered read (block RAM, then its
    register, then a fabric register), so `hw.credit_stream.CreditStream` can give the
    read-out backpressure. They are rounded, then saturated, a register each.

    Parameters
    ----------
    lanes : int
    sum_shape : Shape

    Members
    -------
    i : In(stream.Signature(StructLayout({}), always_ready=True))
    sums : In(ArrayLayout(sum_shape, lanes))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes), always_ready=True))
    """

    #: Cycles from the read address to ``sums``: the block RAM, its output register (yosys
    #: makes it the block RAM's own) and a register in the fabric.
    data_stage = 3
    latency = data_stage + 2

    def __init__(self, lanes: int, sum_shape):
        self.lanes = lanes
        row = data.ArrayLayout(ACT.shape(), lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({}), always_ready=True)),
            "sums": In(data.ArrayLayout(sum_shape, lanes)),
            "o": Out(stream.Signature(row, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        # A register per lane: yosys 0.70's ABC9 fails an assertion on a wide register of
        # signed lanes sliced back (README, known tool problems).
        for k in range(self.lanes):
            rounded = Signal(self.sums[k].shape(), name=f"rounded{k}", reset_less=True)
            saturated = Signal(ACT.shape(), name=f"saturated{k}", reset_less=True)
            m.d.sync += [rounded.eq((self.sums[k] + (1 << (PROB.frac - 1))) >> PROB.frac),
                         saturated.eq(saturate(rounded, ACT))]
            m.d.comb += self.o.payload[k].eq(saturated)
        m.d.comb += self.o.valid.eq(delayed(m, self.i.valid, self.latency, "valid"))
        return m
