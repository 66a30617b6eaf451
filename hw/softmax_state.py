"""The first softmax pass: the running (maximum, total) of each row and its reciprocal."""

from amaranth.hdl import C, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring

from hls import flow
from hw.arith import limb_partials
from hw.delay import delayed
from hw.kernels import kernel_pipe
from hw.xls_pipe import lockstep
from pyref.formats import ACT, PROB, SUM

#: exp(0) as a PROB code: the factor of a total whose maximum holds.
ONE = 1 << PROB.frac
DIFF, MANTISSA, EXPONENT = flow.DIFF.shape(), flow.MANTISSA.shape(), flow.EXPONENT.shape()


def rescaled_plus_one(product):
    """``round(total * scale / 2^15) + 1`` from the product ``total * scale``: the total after
    a rise of the maximum, whose new score's term is exactly 1. The rounding and the term share
    one adder: ``(product + 2^14 + 2^30) >> 15``."""
    return (product + (1 << (PROB.frac - 1)) + (ONE << PROB.frac)) >> PROB.frac


def scores_layout(lanes: int) -> data.StructLayout:
    """One score per lane; ``first`` and ``last`` mark a row's ends (both for length 1)."""
    return data.StructLayout({"score": data.ArrayLayout(ACT.shape(), lanes),
                              "first": 1, "last": 1})


def stats_layout(lanes: int) -> data.StructLayout:
    """Per lane, a row's maximum, total ``sum exp(s - maximum)`` (`SUM`) and the reciprocal
    of the total as ``1/total ~ r * 2^-(16 + e - SUM.frac)`` (`pyref.approx.reciprocal`)."""
    return data.StructLayout({"maximum": data.ArrayLayout(ACT.shape(), lanes),
                              "total": data.ArrayLayout(SUM.shape(), lanes),
                              "r": data.ArrayLayout(MANTISSA, lanes),
                              "e": data.ArrayLayout(EXPONENT, lanes)})


class SoftmaxState(wiring.Component):
    """Single pass over rows of scores, one score per lane per cycle, in lock step.

    Bit-exact with `pyref.approx.softmax_state`: each score updates the running maximum, then
    ``total = sat(round(total * scale / 2^15) + term)``, where one of ``scale`` and ``term``
    is ``exp(-|score - maximum|)`` and the other is exactly 1. So one exp2 pipeline per lane
    serves both, and only the multiply-add is a loop (one cycle). A row's first score sets
    the maximum and the total to 1, as a step from total 0 does.

    A step never grows the total by more than 1 (``scale <= 1``, ``term <= 1``), so a row of
    ``n`` scores totals at most ``n``: the loop is only as wide as ``max_len`` needs and
    never saturates, which keeps it bit-exact with the saturating reference.

    With ``interval = 2`` scores come at most every other cycle, and the loop's multiply
    gets a register of its own (the multiplier's output register): the loop then spans two
    cycles, each with half its logic, where one cycle of it runs near 84 MHz on the ECP5.

    Parameters
    ----------
    lanes : int
        Independent rows processed side by side.
    max_len : int
        Longest row; ``max_len`` in `SUM` must fit without saturating.
    interval : int
        Fewest cycles between two scores: 1, or 2 for the two-cycle loop.

    Members
    -------
    i : In(stream.Signature(scores_layout(lanes), always_ready=True))
    o : Out(stream.Signature(stats_layout(lanes), always_ready=True))
        Valid once per row, `latency` cycles after its last score.
    """

    def __init__(self, lanes: int, max_len: int, interval: int = 1):
        if max_len * ONE > SUM.max_code:
            raise ValueError(f"rows of {max_len} scores could overflow the SUM format")
        if interval not in (1, 2):
            raise ValueError(f"SoftmaxState takes a score every 1 or 2 cycles, not {interval}")
        self.lanes, self.interval = lanes, interval
        self.total_shape = unsigned((max_len * ONE).bit_length())
        self.exps = [kernel_pipe("exp2") for _ in range(lanes)]
        self.reciprocals = [kernel_pipe("reciprocal") for _ in range(lanes)]
        # maximum stage, exp2, total loop, reciprocal
        self.latency = 1 + self.exps[0].latency + interval + self.reciprocals[0].latency
        super().__init__(lockstep(scores_layout(lanes), stats_layout(lanes)))

    def elaborate(self, platform):
        m = Module()
        i = self.i.payload

        # Stage 1: the running maximum (a one-cycle loop) and each score's distance to it.
        step = Signal(data.StructLayout({
            "valid": 1, "first": 1, "last": 1,
            "rises": data.ArrayLayout(1, self.lanes),
            "maximum": data.ArrayLayout(ACT.shape(), self.lanes)}))
        m.d.sync += [step.valid.eq(self.i.valid), step.first.eq(i.first), step.last.eq(i.last)]
        for lane, exp in enumerate(self.exps):
            m.submodules[f"exp{lane}"] = exp
            score = i.score[lane]
            previous = Mux(i.first, score, step.maximum[lane])
            distance = Signal(DIFF, name=f"distance{lane}")
            with m.If(self.i.valid):
                m.d.sync += step.maximum[lane].eq(Mux(score > previous, score, previous))
            m.d.sync += [step.rises[lane].eq(score > previous),
                         distance.eq(Mux(score > previous, previous - score, score - previous))]
            m.d.comb += [exp.i.valid.eq(step.valid), exp.i.payload.eq(distance)]

        # Stage 2: the total, a multiply-add loop; the exps arrive with the step delayed.
        late = delayed(m, step, self.exps[0].latency, "step")
        powers = [exp.o.payload for exp in self.exps]
        # No reset: a row's first score overwrites its total.
        totals = [Signal(self.total_shape, name=f"total{lane}", reset_less=True)
                  for lane in range(self.lanes)]
        # The loop is this cycle's whole critical path, so it is written for speed: the
        # multiplier reads the total register itself (no multiplexer in front, so the
        # register can move into the DSP). A first score's total is its term, exp(0) = 1.
        if self.interval == 2:
            # The loop's second register is the multipliers' own output register: the
            # products of the total's 17-bit limbs, summed in the second cycle beside the
            # rounding (a sum registered in the fabric put the multiply and a carry chain
            # in one cycle, 10.1 ns).
            products = [limb_partials(m, Cat(total, C(0, 1)), power, f"product{lane}")
                        for lane, (total, power) in enumerate(zip(totals, powers, strict=True))]
            powers = [delayed(m, p, 1, f"power{lane}") for lane, p in enumerate(powers)]
            late = delayed(m, late, 1, "late")
        else:
            products = [total * power for total, power in zip(totals, powers, strict=True)]
        ends = Signal()  # the totals now hold a finished row
        m.d.sync += ends.eq(late.valid & late.last)
        for lane, (total, power, product) in enumerate(zip(totals, powers, products,
                                                          strict=True)):
            with m.If(late.valid):
                with m.If(late.first):
                    m.d.sync += total.eq(power)
                with m.Elif(late.rises[lane]):
                    m.d.sync += total.eq(rescaled_plus_one(product))
                with m.Else():
                    m.d.sync += total.eq(total + power)

        # Stage 3: the reciprocal of each finished total.
        maximum = delayed(m, late.maximum, 1, "maximum")
        out_delay = self.reciprocals[0].latency
        for lane, (reciprocal, total) in enumerate(zip(self.reciprocals, totals, strict=True)):
            m.submodules[f"reciprocal{lane}"] = reciprocal
            m.d.comb += [reciprocal.i.valid.eq(ends), reciprocal.i.payload.eq(total),
                         self.o.payload.r[lane].eq(reciprocal.o.payload.r),
                         self.o.payload.e[lane].eq(reciprocal.o.payload.e),
                         self.o.payload.total[lane].eq(delayed(m, total, out_delay,
                                                               f"total{lane}"))]
        m.d.comb += [self.o.valid.eq(self.reciprocals[0].o.valid),
                     self.o.payload.maximum.eq(delayed(m, maximum, out_delay, "maximum"))]
        return m
