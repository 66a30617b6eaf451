"""The MoE unit: router softmax and top-k, patch reordering, and the experts' weight fetches."""

from fractions import Fraction

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.memory_port import MemoryPort, request_layout
from hw.patch_reorder import PatchReorder, entry_layout
from hw.softmax_unit import SoftmaxUnit
from hw.top_k import TopK
from pyref.formats import ACT


def command_layout(max_experts: int, max_tokens: int) -> data.StructLayout:
    """One MoE layer: ``tokens`` rows of ``experts`` router logits; expert ``e``'s weights
    are ``expert_words`` port words from ``weights + e * expert_words``."""
    return data.StructLayout({"tokens": range(max_tokens + 1), "experts": range(max_experts + 1),
                              "expert_words": 16, "weights": request_layout()["addr"].shape})


class MoeUnit(wiring.Component):
    """Routes a MoE layer's tokens and fetches only the weights of the experts they chose.

    Router logits arrive token by token (`pyref.intmodel.route_logits`): a `SoftmaxUnit`
    turns each token's row into probabilities, `TopK` keeps the best ``top_k`` (lower
    expert first among equals, not renormalised), and `PatchReorder` queues the tokens per
    expert. The queues leave expert by expert, and when an expert's first entry is taken the
    unit asks the `MemoryPort` for that expert's weights, which leave on ``weights``. An
    expert no token chose is never fetched: it costs no traffic.

    Parameters
    ----------
    max_experts, top_k, max_tokens : int
    port_width : int
        Bits per memory word.
    memory_depth : int
        Words the memory model holds (see `MemoryPort`).
    rate : Fraction
        The port's words per cycle.

    Members
    -------
    cmd : In(stream.Signature(command_layout(...)))
    logits : In(stream.Signature(ACT))
    o : Out(stream.Signature(entry_layout(max_experts, max_tokens)))
    weights : Out(stream.Signature(port_width))
    read_bytes : Out(48)
    """

    def __init__(self, max_experts: int, top_k: int, max_tokens: int, port_width: int,
                 memory_depth: int, rate=Fraction(1)):
        self.max_experts, self.top_k, self.max_tokens = max_experts, top_k, max_tokens
        # The router's scores are few next to the weight words (16 logits a token): a score
        # every other cycle costs little and keeps the softmax loop off the critical path.
        self.softmax = SoftmaxUnit(lanes=1, max_len=max_experts, interval=2)
        self.interval = self.softmax.interval
        self.top = TopK(top_k, max_experts)
        self.reorder = PatchReorder(max_experts, top_k, max_tokens)
        self.port = MemoryPort(port_width, memory_depth, rate,
                               init=range(memory_depth))  # word i holds i: checkable
        super().__init__({
            "cmd": In(stream.Signature(command_layout(max_experts, max_tokens))),
            "logits": In(stream.Signature(ACT.shape())),
            "o": Out(stream.Signature(entry_layout(max_experts, max_tokens))),
            "weights": Out(stream.Signature(port_width)),
            "read_bytes": Out(48),
        })

    def elaborate(self, platform):
        m = Module()
        for name in ("softmax", "top", "reorder", "port"):
            m.submodules[name] = getattr(self, name)
        softmax, top, reorder, port = self.softmax, self.top, self.reorder, self.port
        m.submodules.fetches = fetches = SyncFIFO(width=request_layout().size,
                                                  depth=self.max_experts)

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

        # The queues leave; an expert's first entry asks for its weights.
        wiring.connect(m, reorder.o, wiring.flipped(self.o))
        taken = self.o.valid & self.o.ready
        # The request's multiply-add is registered on its way into the FIFO.
        fetch = Signal(request_layout())
        asking = Signal()
        m.d.sync += [fetch.addr.eq(job.weights + self.o.payload.expert * job.expert_words),
                     fetch.beats.eq(job.expert_words),
                     asking.eq(taken & self.o.payload.first)]
        m.d.comb += [fetches.w_en.eq(asking), fetches.w_data.eq(fetch),
                     port.read_req.valid.eq(fetches.r_rdy),
                     port.read_req.payload.eq(fetches.r_data),
                     fetches.r_en.eq(port.read_req.ready),
                     self.read_bytes.eq(port.read_bytes)]
        wiring.connect(m, port.read_data, wiring.flipped(self.weights))
        with m.If(taken & self.o.payload.final):
            m.d.sync += busy.eq(0)
        return m
