"""Patch reordering: the tokens of a MoE layer regrouped into one queue per expert."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import times_constant
from hw.column_memory import ColumnMemory
from hw.top_k import choice_layout
from pyref.formats import PROB


def entry_layout(experts: int, max_tokens: int) -> data.StructLayout:
    """One queue entry: a token and its score for ``expert``, whose queue holds ``count``
    tokens. ``first`` and ``last`` mark the ends of the expert's queue, ``final`` the
    layer's last entry."""
    return data.StructLayout({"expert": range(experts), "token": range(max_tokens),
                              "score": PROB.shape(), "count": range(max_tokens + 1),
                              "first": 1, "last": 1, "final": 1})


class PatchReorder(wiring.Component):
    """Per-expert token queues (Edge-MoE's patch reordering), in block RAM.

    Each token's ``k`` choices are appended to their experts' queues, one per cycle. After
    the layer's last token (``last``), the queues are read out expert by expert, in token
    order, skipping the experts no token chose: only the experts that appear need their
    weights. Then the counts clear for the next layer.

    Parameters
    ----------
    experts, k, max_tokens : int

    Members
    -------
    i : In(stream.Signature(StructLayout({"choice": choice_layout(k, experts), "last": 1})))
    o : Out(stream.Signature(entry_layout(experts, max_tokens)))
    """

    def __init__(self, experts: int, k: int, max_tokens: int):
        self.experts, self.k, self.max_tokens = experts, k, max_tokens
        # The queues are written while the tokens arrive and read after: never both at once.
        self.queues = ColumnMemory(shape=data.StructLayout({"token": range(max_tokens),
                                                            "score": PROB.shape()}),
                                   depth=experts * max_tokens, collisions_undefined=True)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "choice": choice_layout(k, experts), "last": 1}))),
            "o": Out(stream.Signature(entry_layout(experts, max_tokens))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.queues = self.queues
        store, load = self.queues.write_port(), self.queues.read_port()
        counts = [Signal(range(self.max_tokens + 1), name=f"count{e}")
                  for e in range(self.experts)]
        count = Signal(range(self.max_tokens + 1))
        reading = Signal()

        # -- write: the current token's choices, one rank per cycle
        token = Signal(range(self.max_tokens))
        rank = Signal(range(self.k))
        expert = self.i.payload.choice.index[rank]
        for e, c in enumerate(counts):
            with m.If(expert == e):
                m.d.comb += count.eq(c)
        writes = self.i.valid & ~reading
        # The write is registered (its address comes through the count multiplexer); the
        # queues are read at least two cycles after the last one (`settled`).
        m.d.sync += [store.en.eq(writes),
                     store.addr.eq(times_constant(expert, self.max_tokens) + count),
                     store.data.token.eq(token),
                     store.data.score.eq(self.i.payload.choice.value[rank])]
        m.d.comb += self.i.ready.eq(~reading & (rank == self.k - 1))
        with m.If(writes):
            for e, c in enumerate(counts):
                with m.If(expert == e):
                    m.d.sync += c.eq(c + 1)
            m.d.sync += rank.eq(rank + 1)
            with m.If(rank == self.k - 1):
                m.d.sync += [rank.eq(0), token.eq(token + 1)]
                with m.If(self.i.payload.last):
                    m.d.sync += [reading.eq(1), token.eq(0)]

        # -- read: every used expert's queue, in expert order. The cursor's count is
        # registered, so a move of the cursor waits a cycle for it (`settled`): the
        # multiplexer over the counts stays off the path from the cursor to its enable.
        cursor = Signal(range(self.experts + 1))
        position = Signal(range(self.max_tokens))
        here = Signal(range(self.max_tokens + 1))
        for e, c in enumerate(counts):
            with m.If(cursor == e):
                m.d.sync += here.eq(c)
        settled = Signal()
        m.d.sync += settled.eq(reading)
        later = Signal()  # an expert after the cursor has tokens
        for e, c in enumerate(counts):
            with m.If((cursor < e) & (c != 0)):
                m.d.comb += later.eq(1)
        advance = settled & (~self.o.valid | self.o.ready)
        entry = (cursor < self.experts) & (position < here)
        ends = position == here - 1
        m.d.comb += [load.en.eq(advance & entry),
                     load.addr.eq(times_constant(cursor, self.max_tokens) + position),
                     self.o.payload.token.eq(load.data.token),
                     self.o.payload.score.eq(load.data.score)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(advance):
            with m.If(entry):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.expert.eq(cursor),
                             self.o.payload.count.eq(here),
                             self.o.payload.first.eq(position == 0),
                             self.o.payload.last.eq(ends),
                             self.o.payload.final.eq(ends & ~later),
                             position.eq(Mux(ends, 0, position + 1))]
                with m.If(ends):
                    m.d.sync += [cursor.eq(cursor + 1), settled.eq(0)]
            with m.Elif(cursor < self.experts):
                m.d.sync += [cursor.eq(cursor + 1), settled.eq(0)]  # an expert no token chose
            with m.Else():
                m.d.sync += [reading.eq(0), settled.eq(0), cursor.eq(0),
                             *[c.eq(0) for c in counts]]
        return m
