"""The MoE layer's scatter: each expert's outputs, weighted by their scores, summed per token."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from pyref.formats import ACT, PROB


def entry_layout(max_tokens: int) -> data.StructLayout:
    """One entry of an expert's queue; ``last`` ends the queue, ``final`` the layer."""
    return data.StructLayout({"token": range(max_tokens), "score": PROB.shape(), "last": 1,
                              "final": 1})


class ExpertCombine(wiring.Component):
    """``out[t] = round(sum over experts of score[t] * y[t] / 2^15)`` for a MoE layer
    (`pyref.intmodel.moe`), ``lanes`` values per cycle.

    For each used expert its queue arrives on ``queue`` (tokens in order), then its fc2
    outputs on ``y`` in the linear unit's order: for each output chunk, one beat per queued
    token. Each beat times its token's score is added into the token's row of an on-chip
    accumulator (block RAM; exact, so the order of experts does not matter). After the
    ``final`` queue's outputs every token's row leaves on ``o``, token by token, rounded
    once and saturated to `ACT`, and the accumulator is cleared behind it.

    Parameters
    ----------
    lanes : int
        Values per beat (the linear unit's ``tile_out``).
    max_tokens, max_chunks : int
        Rows, and chunks per row, that the accumulator holds.

    Members
    -------
    cmd : In(stream.Signature(StructLayout({"tokens", "chunks"})))
    queue : In(stream.Signature(entry_layout(max_tokens)))
    y : In(stream.Signature(ArrayLayout(ACT, lanes)))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes)))
    """

    def __init__(self, lanes: int, max_tokens: int, max_chunks: int):
        self.lanes, self.max_tokens, self.max_chunks = lanes, max_tokens, max_chunks
        # A token has at most k scores summing to at most 1 (2^15) times |y| <= 2^15.
        self.sum_shape = signed(2 * PROB.frac + 2)
        self.sums = Memory(shape=data.ArrayLayout(self.sum_shape, lanes),
                           depth=max_tokens * max_chunks, init=[])
        self.entries = Memory(shape=data.StructLayout({"token": range(max_tokens),
                                                       "score": PROB.shape()}),
                              depth=max_tokens, init=[])
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "tokens": range(max_tokens + 1), "chunks": range(max_chunks + 1)}))),
            "queue": In(stream.Signature(entry_layout(max_tokens))),
            "y": In(stream.Signature(data.ArrayLayout(ACT.shape(), lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sums = self.sums
        m.submodules.entries = self.entries
        store_entry = self.entries.write_port()
        entry = self.entries.read_port(transparent_for=(store_entry,))
        store, load = self.sums.write_port(), self.sums.read_port()

        job = Signal(self.cmd.payload.shape())
        queued = Signal(range(self.max_tokens + 1))  # entries of the current expert
        final = Signal()  # the current expert is the layer's last
        index = Signal(range(self.max_tokens))  # the entry of the current y beat
        chunk = Signal(range(self.max_chunks))
        token = Signal(range(self.max_tokens))  # the row being sent out

        # The entry of the next y beat is read ahead, so it is there when the beat is.
        m.d.comb += entry.addr.eq(index)

        # A y beat's sum is read in its cycle and written back, with the product, in the
        # next; two beats of one expert never share a row and chunk, so nothing is missed.
        added = Signal()
        added_addr = Signal.like(store.addr)
        added_score = Signal(PROB.shape())
        added_y = Signal.like(self.y.payload)
        m.d.sync += added.eq(0)
        m.d.comb += [store.addr.eq(added_addr), store.en.eq(added)]
        for k in range(self.lanes):
            m.d.comb += store.data[k].eq(load.data[k] + added_score * added_y[k])

        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += job.eq(self.cmd.payload)
                    m.next = "queue"
            with m.State("queue"):
                m.d.comb += [self.queue.ready.eq(1), store_entry.en.eq(self.queue.valid),
                             store_entry.addr.eq(queued),
                             store_entry.data.token.eq(self.queue.payload.token),
                             store_entry.data.score.eq(self.queue.payload.score)]
                with m.If(self.queue.valid):
                    m.d.sync += [queued.eq(queued + 1), final.eq(self.queue.payload.final)]
                    with m.If(self.queue.payload.last):
                        m.next = "outputs"
            with m.State("outputs"):
                take = self.y.valid & self.y.ready
                ends = index == queued - 1
                m.d.comb += [self.y.ready.eq(1),
                             load.addr.eq(entry.data.token * self.max_chunks + chunk),
                             entry.addr.eq(Mux(take, Mux(ends, 0, index + 1), index))]
                with m.If(take):
                    m.d.sync += [added.eq(1), added_addr.eq(load.addr),
                                 added_score.eq(entry.data.score), added_y.eq(self.y.payload),
                                 index.eq(Mux(ends, 0, index + 1))]
                    with m.If(ends):
                        m.d.sync += chunk.eq(chunk + 1)
                        with m.If(chunk == job.chunks - 1):
                            m.d.sync += [chunk.eq(0), queued.eq(0)]
                            m.next = "queue"
                            with m.If(final):
                                m.next = "settle"
            with m.State("settle"):
                m.next = "rows"  # the last product is written back
            with m.State("rows"):
                # Read ahead: a row chunk is read when the output register is free, and
                # cleared in the same cycle (the read returns the old value).
                advance = ~self.o.valid | self.o.ready
                more = token < job.tokens
                m.d.comb += [load.addr.eq(token * self.max_chunks + chunk),
                             load.en.eq(advance)]
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += self.o.valid.eq(0)
                with m.If(advance & more):
                    m.d.comb += [store.en.eq(1), store.addr.eq(load.addr),
                                 *[store.data[k].eq(0) for k in range(self.lanes)]]
                    m.d.sync += [self.o.valid.eq(1), chunk.eq(chunk + 1)]
                    with m.If(chunk == job.chunks - 1):
                        m.d.sync += [chunk.eq(0), token.eq(token + 1)]
                with m.If(advance & ~more):
                    m.d.sync += token.eq(0)
                    m.next = "idle"
        for k in range(self.lanes):
            rounded = (load.data[k] + (1 << (PROB.frac - 1))) >> PROB.frac
            m.d.comb += self.o.payload[k].eq(Mux(rounded > ACT.max_code, ACT.max_code,
                                                 Mux(rounded < ACT.min_code, ACT.min_code,
                                                     rounded)))
        return m
