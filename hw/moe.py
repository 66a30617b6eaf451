"""The MoE unit: router softmax and top-k, then patch reordering."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.patch_reorder import PatchReorder, entry_layout
from hw.softmax_unit import SoftmaxUnit
from hw.top_k import TopK
from pyref.formats import ACT


def command_layout(max_experts: int, max_tokens: int) -> data.StructLayout:
    """One MoE layer: ``tokens`` rows of ``experts`` router logits."""
    return data.StructLayout({"tokens": range(max_tokens + 1), "experts": range(max_experts + 1)})


class MoeUnit(wiring.Component):
    """Routes a MoE layer's tokens and queues them per expert.

    Router logits arrive token by token (`pyref.intmodel.route_logits`): a `SoftmaxUnit`
    turns each token's row into probabilities, `TopK` keeps the best ``top_k`` (lower
    expert first among equals, not renormalised), and `PatchReorder` queues the tokens per
    expert. The queues leave expert by expert, skipping experts no token chose; each entry
    carries its expert's queue length, so the controller can fetch that expert's weights
    once and size its jobs (docs/isa.md, ``EXPERTS``). An expert no token chose is never
    announced, so its weights cost no traffic.

    Parameters
    ----------
    max_experts, top_k, max_tokens : int

    Members
    -------
    cmd : In(stream.Signature(command_layout(...)))
    logits : In(stream.Signature(ACT))
    o : Out(stream.Signature(entry_layout(max_experts, max_tokens)))
    """

    def __init__(self, max_experts: int, top_k: int, max_tokens: int):
        self.max_experts, self.top_k, self.max_tokens = max_experts, top_k, max_tokens
        # The router's scores are few next to the weight words (16 logits a token): a score
        # every other cycle costs little and keeps the softmax loop off the critical path.
        self.softmax = SoftmaxUnit(lanes=1, max_len=max_experts, interval=2)
        self.interval = self.softmax.interval
        self.top = TopK(top_k, max_experts)
        self.reorder = PatchReorder(max_experts, top_k, max_tokens)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(max_experts, max_tokens))),
            "logits": In(stream.Signature(ACT.shape())),
            "o": Out(stream.Signature(entry_layout(max_experts, max_tokens))),
        })

    def elaborate(self, platform):
        m = Module()
        for name in ("softmax", "top", "reorder"):
            m.submodules[name] = getattr(self, name)
        softmax, top, reorder = self.softmax, self.top, self.reorder

        job = Signal(self.cmd.payload.shape())
        busy = Signal()  # until the layer's last entry leaves
        feeding = Signal()  # until its last logit is in
        m.d.comb += self.cmd.ready.eq(~busy)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [job.eq(self.cmd.payload), busy.eq(1), feeding.eq(1)]

        # Logits, a row per token, into the softmax.
        expert = Signal(range(self.max_experts))
        row = Signal(range(self.max_tokens))
        m.d.comb += [softmax.i.valid.eq(feeding & self.logits.valid),
                     softmax.i.payload.score[0].eq(self.logits.payload),
                     softmax.i.payload.last.eq(expert == job.experts - 1),
                     self.logits.ready.eq(feeding & softmax.i.ready)]
        with m.If(softmax.i.valid & softmax.i.ready):
            m.d.sync += expert.eq(expert + 1)
            with m.If(expert == job.experts - 1):
                m.d.sync += [expert.eq(0), row.eq(row + 1)]
                with m.If(row == job.tokens - 1):
                    m.d.sync += [row.eq(0), feeding.eq(0)]

        # Probabilities into top-k, the choices into the queues.
        token = Signal(range(self.max_tokens))
        m.d.comb += [top.i.valid.eq(softmax.o.valid),
                     top.i.payload.value.eq(softmax.o.payload.p[0]),
                     top.i.payload.last.eq(softmax.o.payload.last),
                     softmax.o.ready.eq(top.i.ready),
                     reorder.i.valid.eq(top.o.valid),
                     reorder.i.payload.choice.eq(top.o.payload),
                     reorder.i.payload.last.eq(token == job.tokens - 1),
                     top.o.ready.eq(reorder.i.ready)]
        with m.If(top.o.valid & top.o.ready):
            m.d.sync += token.eq(token + 1)
            with m.If(token == job.tokens - 1):
                m.d.sync += token.eq(0)

        wiring.connect(m, reorder.o, wiring.flipped(self.o))
        taken = self.o.valid & self.o.ready
        with m.If(taken & self.o.payload.final):
            m.d.sync += busy.eq(0)
        return m
