"""LayerNorm's second pass: each value normalised with its row's sum and rsqrt, scaled and
shifted."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hls import flow
from hls.flow import EXPONENT, MANTISSA, TOTAL
from hw.delay import feed_apart
from hw.kernels import kernel_pipe
from pyref.formats import ACT, WEIGHT

#: Values per row, as the XLS LayerNorm kernels take it.
DIM = flow.KERNELS["ln_apply"].inputs["dim"].shape()


def apply_layout(lanes: int) -> data.StructLayout:
    """A chunk of a row with its columns' ``gamma`` and ``beta`` and the row's sum
    ``total`` and rsqrt ``(r, e)``."""
    return data.StructLayout({"x": data.ArrayLayout(ACT.shape(), lanes),
                              "gamma": data.ArrayLayout(WEIGHT.shape(), lanes),
                              "beta": data.ArrayLayout(WEIGHT.shape(), lanes),
                              "total": TOTAL.shape(), "r": MANTISSA.shape(),
                              "e": EXPONENT.shape()})


class LayerNormApply(wiring.Component):
    """The ``ln_apply`` kernel on each lane, in lock step (`hw.xls_pipe.lockstep`, plus
    ``dim``). Each lane takes its inputs from registers of its own (`hw.delay.feed_apart`).

    Bit-exact with `pyref.intmodel.layernorm_apply` given the row's ``total`` and ``(r, e)``.

    Parameters
    ----------
    lanes : int

    Members
    -------
    i : In(stream.Signature(apply_layout(lanes), always_ready=True))
    dim : In(DIM)
        Values per row; it holds for a whole layer.
    o : Out(stream.Signature(ArrayLayout(ACT, lanes), always_ready=True))
    """

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.pipes = [kernel_pipe("ln_apply") for _ in range(lanes)]
        self.latency = 1 + self.pipes[0].latency
        super().__init__({
            "i": In(stream.Signature(apply_layout(lanes), always_ready=True)),
            "dim": In(DIM),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), lanes), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        i = self.i.payload
        for lane, pipe in enumerate(self.pipes):
            m.submodules[f"apply{lane}"] = pipe
            inputs = Signal(pipe.i.payload.shape(), name=f"lane{lane}_inputs")
            m.d.comb += [inputs.x.eq(i.x[lane]), inputs.total.eq(i.total),
                         inputs.dim.eq(self.dim), inputs.r.eq(i.r), inputs.e.eq(i.e),
                         inputs.gamma.eq(i.gamma[lane]), inputs.beta.eq(i.beta[lane]),
                         self.o.payload[lane].eq(pipe.o.payload)]
            feed_apart(m, pipe.i, self.i.valid, inputs, f"lane{lane}_fed")
        m.d.comb += self.o.valid.eq(self.pipes[0].o.valid)
        return m
