"""Accumulators to activations, lane by lane: requantise, then GELU when asked."""

from amaranth.hdl import Module, Mux
from amaranth.lib import data, wiring

from hw.delay import delayed
from hw.kernels import kernel_pipe
from hw.xls_pipe import lockstep
from pyref.formats import ACC, ACT


def lanes_layout(lanes: int) -> data.StructLayout:
    """Input of `RequantLanes`: one accumulator per lane and the GELU flag."""
    return data.StructLayout({"acc": data.ArrayLayout(ACC.shape(), lanes), "gelu": 1})


class RequantLanes(wiring.Component):
    """``lanes`` requantisers (the XLS ``requant`` kernel), each followed by GELU when a
    beat's ``gelu`` flag is set.

    Lock-step (`hw.xls_pipe.lockstep`). Without the flag the activation waits beside GELU,
    so every beat takes the same latency and results stay in order.

    Parameters
    ----------
    lanes : int
    gelu : bool
        Build the GELU pipelines (without them the flag is ignored).

    Members
    -------
    i : In(stream.Signature(lanes_layout(lanes), always_ready=True))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes), always_ready=True))
    """

    def __init__(self, lanes: int, gelu: bool = True):
        self.requant = [kernel_pipe("requant") for _ in range(lanes)]
        self.gelu = [kernel_pipe("gelu") for _ in range(lanes)] if gelu else []
        self.latency = self.requant[0].latency + (self.gelu[0].latency if gelu else 0)
        super().__init__(lockstep(lanes_layout(lanes), data.ArrayLayout(ACT.shape(), lanes)))

    def elaborate(self, platform):
        m = Module()
        gelu_flag = delayed(m, self.i.payload.gelu, self.latency, "gelu")
        for k, requant in enumerate(self.requant):
            m.submodules[f"requant{k}"] = requant
            m.d.comb += [requant.i.valid.eq(self.i.valid),
                         requant.i.payload.eq(self.i.payload.acc[k])]
            if not self.gelu:
                m.d.comb += self.o.payload[k].eq(requant.o.payload)
                continue
            gelu = self.gelu[k]
            m.submodules[f"gelu{k}"] = gelu
            m.d.comb += [gelu.i.valid.eq(requant.o.valid), gelu.i.payload.eq(requant.o.payload)]
            plain = delayed(m, requant.o.payload, gelu.latency, f"plain{k}")
            m.d.comb += self.o.payload[k].eq(Mux(gelu_flag, gelu.o.payload, plain))
        last = self.gelu or self.requant
        m.d.comb += self.o.valid.eq(last[0].o.valid)
        return m
