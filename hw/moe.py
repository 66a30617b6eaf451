"""The MoE unit: router softmax and top-k, then patch reordering."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import wrapping_count
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

        busy = Signal()  # until the layer's last entry leaves
        feeding = Signal()  # until its last logit is in
        m.d.comb += self.cmd.ready.eq(~busy)
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += [busy.eq(1), feeding.eq(1)]

        # Logits, a row per token, into the softmax. The counters' last values are flags
        # in registers: the end of a token's choices reaches the reorder's far registers.
        fed = softmax.i.valid & softmax.i.ready
        *_, expert_last = wrapping_count(m, range(self.max_experts), start,
                                         self.cmd.payload.experts, fed, "expert")
        *_, row_last = wrapping_count(m, range(self.max_tokens), start,
                                      self.cmd.payload.tokens, fed & expert_last, "row")
        m.d.comb += [softmax.i.valid.eq(feeding & self.logits.valid),
                     softmax.i.payload.score[0].eq(self.logits.payload),
                     softmax.i.payload.last.eq(expert_last),
                     self.logits.ready.eq(feeding & softmax.i.ready)]
        with m.If(fed & expert_last & row_last):
            m.d.sync += feeding.eq(0)

        # Probabilities into top-k, the choices into the queues.
        *_, token_last = wrapping_count(m, range(self.max_tokens), start,
                                        self.cmd.payload.tokens, top.o.valid & top.o.ready,
                                        "token")
        m.d.comb += [top.i.valid.eq(softmax.o.valid),
                     top.i.payload.value.eq(softmax.o.payload.p[0]),
                     top.i.payload.last.eq(softmax.o.payload.last),
                     softmax.o.ready.eq(top.i.ready),
                     reorder.i.valid.eq(top.o.valid),
                     reorder.i.payload.choice.eq(top.o.payload),
                     reorder.i.payload.last.eq(token_last),
                     top.o.ready.eq(reorder.i.ready)]

        wiring.connect(m, reorder.o, wiring.flipped(self.o))
        taken = self.o.valid & self.o.ready
        with m.If(taken & self.o.payload.final):
            m.d.sync += busy.eq(0)
        return m
