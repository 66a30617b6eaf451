"""Attention's online softmax: each lane's running maximum and total, one step per key."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring

from hw.arith import limb_product
from hw.delay import delayed
from hw.kernels import kernel_pipe
from hw.softmax_state import DIFF, EXPONENT, MANTISSA, ONE, rescaled_plus_one
from hw.xls_pipe import lockstep
from pyref.formats import ACT, PROB


def lane_flags(lanes: int) -> data.StructLayout:
    """Per lane: ``active`` (it holds a query this step), ``first`` and ``last`` (the
    step is its query's first or last key)."""
    return data.StructLayout({name: data.ArrayLayout(1, lanes)
                              for name in ("active", "first", "last")})


def step_layout(lanes: int) -> data.StructLayout:
    """One key step: each lane's score and flags."""
    return data.StructLayout({"score": data.ArrayLayout(ACT.shape(), lanes),
                              "flags": lane_flags(lanes)})


def factors_layout(lanes: int) -> data.StructLayout:
    """What the output accumulators need from a step: the flags, and per lane whether the
    maximum rose and ``exp(-|score - maximum|)``; plus the reciprocal ``(r, e)`` of the
    total of the query that ended (``ended``) on lane ``end_lane``."""
    return data.StructLayout({
        "flags": lane_flags(lanes),
        "rises": data.ArrayLayout(1, lanes),
        "power": data.ArrayLayout(PROB.shape(), lanes),
        "ended": 1, "end_lane": range(max(lanes, 2)), "r": MANTISSA, "e": EXPONENT,
    })


class AttentionSoftmax(wiring.Component):
    """Online softmax for ``lanes`` queries at once, in lock step, one step per key.

    Bit-exact with `pyref.approx.softmax_step` (see `hw.softmax_state.SoftmaxState` for the
    single exp2 per score). Steps come at least `min_spacing` cycles apart, so the total's
    multiply-add may take three cycles: products of 17-bit limbs (`hw.arith.limb_product`,
    registered in their DSP blocks), their sum, then the new total. At most one query ends
    per step (lane ``j`` ends at key ``j - 1``), so one reciprocal serves every lane.

    Parameters
    ----------
    lanes : int
        Queries in flight (attention parallelism P).
    max_tokens : int
        Longest row: bounds the total.

    Members
    -------
    i : In(stream.Signature(step_layout(lanes), always_ready=True))
    o : Out(stream.Signature(factors_layout(lanes), always_ready=True))
    """

    #: Fewest cycles between two steps.
    min_spacing = 3

    def __init__(self, lanes: int, max_tokens: int):
        self.lanes = lanes
        self.total_shape = unsigned((max_tokens * ONE).bit_length())
        self.exps = [kernel_pipe("exp2") for _ in range(lanes)]
        self.reciprocal = kernel_pipe("reciprocal")
        # maximum, exp2, product (two stages), total, reciprocal
        self.latency = 1 + self.exps[0].latency + 3 + self.reciprocal.latency
        super().__init__(lockstep(step_layout(lanes), factors_layout(lanes)))

    def elaborate(self, platform):
        m = Module()
        i = self.i.payload
        m.submodules.reciprocal = reciprocal = self.reciprocal

        # Stage 1: the running maximum of each lane and the score's distance to it.
        rises = Signal(data.ArrayLayout(1, self.lanes))
        maxima = [Signal(ACT.shape(), name=f"maximum{j}") for j in range(self.lanes)]
        for j, (exp, maximum) in enumerate(zip(self.exps, maxima, strict=True)):
            m.submodules[f"exp{j}"] = exp
            score = i.score[j]
            previous = Mux(i.flags.first[j], score, maximum)
            distance = Signal(DIFF, name=f"distance{j}")
            with m.If(self.i.valid & i.flags.active[j]):
                m.d.sync += maximum.eq(Mux(score > previous, score, previous))
            m.d.sync += [rises[j].eq(score > previous),
                         distance.eq(Mux(score > previous, previous - score, score - previous))]
            m.d.comb += [exp.i.valid.eq(delayed(m, self.i.valid, 1, "valid1")),
                         exp.i.payload.eq(distance)]

        # Stages 2 to 4: the product of the total, then the new total.
        late = delayed(m, i.flags, 1 + self.exps[0].latency, "flags")
        late_valid = self.exps[0].o.valid
        late_rises = delayed(m, rises, self.exps[0].latency, "rises")
        then = delayed(m, late, 2, "then")
        then_valid = delayed(m, late_valid, 2, "then_valid")
        then_rises = delayed(m, late_rises, 2, "then_rises")
        totals = [Signal(self.total_shape, name=f"total{j}", reset_less=True)
                  for j in range(self.lanes)]
        powers = []
        for j, (exp, total) in enumerate(zip(self.exps, totals, strict=True)):
            wide = Signal(signed(self.total_shape.width + 1), name=f"wide_total{j}")
            m.d.comb += wide.eq(total)
            product = limb_product(m, wide, exp.o.payload, f"product{j}")
            power = delayed(m, exp.o.payload, 2, f"power{j}")
            powers.append(power)
            with m.If(then_valid & then.active[j]):
                with m.If(then.first[j]):
                    m.d.sync += total.eq(power)
                with m.Elif(then_rises[j]):
                    m.d.sync += total.eq(rescaled_plus_one(product))
                with m.Else():
                    m.d.sync += total.eq(total + power)

        # Stage 4 on: the reciprocal of the total whose query just ended (at most one).
        now = delayed(m, then, 1, "now")
        now_valid = delayed(m, then_valid, 1, "now_valid")
        ending = Signal(self.total_shape)
        end_lane = Signal(range(max(self.lanes, 2)))
        m.d.comb += ending.eq(ONE)
        for j, total in enumerate(totals):
            with m.If(now.last[j]):
                m.d.comb += [ending.eq(total), end_lane.eq(j)]
        m.d.comb += [reciprocal.i.valid.eq(now_valid), reciprocal.i.payload.eq(ending)]

        after = self.reciprocal.latency
        out = self.o.payload
        m.d.comb += [
            self.o.valid.eq(reciprocal.o.valid),
            out.flags.eq(delayed(m, now, after, "out_flags")),
            out.rises.eq(delayed(m, then_rises, 1 + after, "out_rises")),
            out.ended.eq(delayed(m, now_valid & now.last.as_value().any(), after, "out_ended")),
            out.end_lane.eq(delayed(m, end_lane, after, "out_end_lane")),
            out.r.eq(reciprocal.o.payload.r), out.e.eq(reciprocal.o.payload.e),
        ]
        for j, power in enumerate(powers):
            m.d.comb += out.power[j].eq(delayed(m, power, 1 + after, f"out_power{j}"))
        return m
