"""The second softmax pass: each score's probability from its row's maximum and reciprocal."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring

from hw.delay import delayed
from hw.kernels import kernel_pipe
from hw.softmax_state import DIFF, EXPONENT, MANTISSA
from hw.xls_pipe import lockstep
from pyref.formats import ACT, PROB


def replay_layout(lanes: int) -> data.StructLayout:
    """A replayed score per lane with its row's maximum and reciprocal ``(r, e)``."""
    return data.StructLayout({"score": data.ArrayLayout(ACT.shape(), lanes),
                              "maximum": data.ArrayLayout(ACT.shape(), lanes),
                              "r": data.ArrayLayout(MANTISSA, lanes),
                              "e": data.ArrayLayout(EXPONENT, lanes),
                              "last": 1})


def probs_layout(lanes: int) -> data.StructLayout:
    return data.StructLayout({"p": data.ArrayLayout(PROB.shape(), lanes), "last": 1})


class SoftmaxNormalise(wiring.Component):
    """``exp(score - maximum) / total`` per lane, in lock step: the exp2 and normalise kernels.

    Bit-exact with `pyref.approx.softmax_fixed` given its row's final state.

    Parameters
    ----------
    lanes : int
        Independent rows processed side by side.

    Members
    -------
    i : In(stream.Signature(replay_layout(lanes), always_ready=True))
    o : Out(stream.Signature(probs_layout(lanes), always_ready=True))
    """

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.exps = [kernel_pipe("exp2") for _ in range(lanes)]
        self.normalisers = [kernel_pipe("normalise") for _ in range(lanes)]
        self.latency = 1 + self.exps[0].latency + self.normalisers[0].latency
        super().__init__(lockstep(replay_layout(lanes), probs_layout(lanes)))

    def elaborate(self, platform):
        m = Module()
        i = self.i.payload
        valid = Signal()
        m.d.sync += valid.eq(self.i.valid)
        wait = 1 + self.exps[0].latency
        r, e = delayed(m, i.r, wait, "r"), delayed(m, i.e, wait, "e")
        for lane, (exp, normaliser) in enumerate(zip(self.exps, self.normalisers, strict=True)):
            m.submodules[f"exp{lane}"] = exp
            m.submodules[f"normalise{lane}"] = normaliser
            distance = Signal(DIFF, name=f"distance{lane}")
            m.d.sync += distance.eq(i.score[lane] - i.maximum[lane])
            m.d.comb += [exp.i.valid.eq(valid), exp.i.payload.eq(distance),
                         normaliser.i.valid.eq(exp.o.valid),
                         normaliser.i.payload.term.eq(exp.o.payload),
                         normaliser.i.payload.r.eq(r[lane]),
                         normaliser.i.payload.e.eq(e[lane]),
                         self.o.payload.p[lane].eq(normaliser.o.payload)]
        m.d.comb += [self.o.valid.eq(self.normalisers[0].o.valid),
                     self.o.payload.last.eq(delayed(m, i.last, self.latency, "last"))]
        return m
