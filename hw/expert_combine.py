"""The MoE layer's scatter: each expert's outputs, weighted by their scores, summed per token."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.arith import times_constant
from hw.column_memory import ColumnMemory
from hw.combine_rounding import CombineRounding
from hw.credit_stream import CreditStream
from hw.delay import delayed
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
    once and saturated to `ACT` (`CombineRounding`, given backpressure by a
    `CreditStream`), and the accumulator is cleared behind it.

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
        # Beats that share a row are far enough apart that no read needs a word in the
        # cycle it is written (see `elaborate`).
        self.sums = ColumnMemory(shape=data.ArrayLayout(self.sum_shape, lanes),
                                 depth=max_tokens * max_chunks, collisions_undefined=True)
        # An entry keeps its token as the first address of the token's row.
        self.entries = Memory(shape=data.StructLayout({"row": range(max_tokens * max_chunks),
                                                       "score": PROB.shape()}),
                              depth=max_tokens, init=[])
        #: Cycles from a y beat to its sum's write.
        self.latency = 5
        #: Idle cycles before an expert's outputs. A beat's sum is read two cycles after
        #: the beat; with the queue's cycle (one entry at least) and the state change, the
        #: next expert's first read comes after the last expert's last write.
        self.gap = self.latency - 3
        self.readout = CreditStream(CombineRounding(lanes, self.sum_shape))
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
        m.submodules.readout = readout = self.readout
        rounding = readout.pipe
        wiring.connect(m, readout.o, wiring.flipped(self.o))
        store_entry = self.entries.write_port()
        # Not transparent: the queue's entries are written at least `gap` cycles before
        # the first is read. Two reads each cycle, at the current entry and at the one
        # after it, both addressed from registers: whether a y beat is taken picks
        # between them a cycle later instead of steering an address into the memory.
        entry_here, entry_next = self.entries.read_port(), self.entries.read_port()
        store = self.sums.write_port()
        load = self.sums.read_port()

        job = Signal(self.cmd.payload.shape())
        queued = Signal(range(self.max_tokens + 1))  # entries of the current expert
        final = Signal()  # the current expert is the layer's last
        index = Signal(range(self.max_tokens))  # the entry of the current y beat
        # Beside `index`, in registers: the entry after it, the expert's last entry, and
        # whether `index` is that one. The next entry's address is then a multiplexer of
        # registers, with no adder or compare in front of it.
        index_next = Signal(range(self.max_tokens + 1), init=1)
        last_index = Signal.like(index)
        ends = Signal()
        chunk = Signal(range(self.max_chunks))
        sent = Signal(range(self.max_tokens + 1))  # rows sent out
        row = Signal(range(self.max_tokens * self.max_chunks))  # the first address of the next
        settling = Signal(range(self.latency + 1))
        waiting = Signal(range(self.gap))
        clearing, cleared = Signal(), Signal.like(store.addr)  # a chunk sent, to clear

        # A y beat goes through six stages: its entry (read ahead) and the beat are
        # registered (the entry out of the queue's read registers); the sum's address is
        # the entry's row plus the chunk; the sum is read and the score times the beat
        # registered; the sum leaves the block RAM (its output register); it is registered
        # again in the fabric (the block RAM's output is slow and far); the new sum is
        # written. A sum is read two cycles after its beat and written `latency` cycles
        # after it. Two beats of one expert never share a row and chunk, and between
        # experts the queue's cycles and `gap` cycles pass (see `gap`).
        took_entry = Signal()
        entry_chunk = Signal.like(chunk, reset_less=True)
        entry_beat = Signal.like(self.y.payload, reset_less=True)
        m.d.sync += [took_entry.eq(0), clearing.eq(0)]
        # Both reads are registered first (in a block RAM, its output register), and a beat
        # taken two cycles ago, which moved `index` on, picks the next entry's.
        entry_now = data.View(self.entries.shape, Mux(
            delayed(m, took_entry, 1, "moved_on"),
            delayed(m, entry_next.data, 1, "entry_next", reset_less=True),
            delayed(m, entry_here.data, 1, "entry_here", reset_less=True)))
        took = Signal()
        addr = Signal.like(store.addr, reset_less=True)
        score = Signal(PROB.shape(), reset_less=True)
        beat = Signal.like(self.y.payload, reset_less=True)
        m.d.sync += [took.eq(took_entry), addr.eq(entry_now.row + entry_chunk),
                     score.eq(entry_now.score), beat.eq(entry_beat)]
        products = [Signal(self.sum_shape, name=f"product{k}", reset_less=True)
                    for k in range(self.lanes)]
        m.d.sync += [p.eq(score * beat[k]) for k, p in enumerate(products)]
        summed = delayed(m, took, 3, "summed")
        summed_addr = delayed(m, addr, 3, "summed_addr")
        late_products = [delayed(m, p, 2, f"late_product{k}") for k, p in enumerate(products)]
        fetched = [delayed(m, load.data[k], 2, f"fetched{k}", reset_less=True)
                   for k in range(self.lanes)]
        m.d.comb += [rounding.sums[k].eq(f) for k, f in enumerate(fetched)]
        m.d.comb += [load.addr.eq(addr), entry_here.addr.eq(index),
                     entry_next.addr.eq(Mux(ends, 0, index_next)),
                     store.en.eq(summed), store.addr.eq(summed_addr)]
        for k, product in enumerate(late_products):
            m.d.comb += store.data[k].eq(fetched[k] + product)

        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += job.eq(self.cmd.payload)
                    m.next = "queue"
            with m.State("queue"):
                m.d.comb += [self.queue.ready.eq(1), store_entry.en.eq(self.queue.valid),
                             store_entry.addr.eq(queued),
                             store_entry.data.row.eq(
                                 times_constant(self.queue.payload.token, self.max_chunks)),
                             store_entry.data.score.eq(self.queue.payload.score)]
                with m.If(self.queue.valid):
                    m.d.sync += [queued.eq(queued + 1), final.eq(self.queue.payload.final),
                                 last_index.eq(queued), ends.eq(queued == 0)]
                    with m.If(self.queue.payload.last):
                        m.d.sync += waiting.eq(self.gap - 1)
                        m.next = "gap"
            with m.State("gap"):
                m.d.sync += waiting.eq(waiting - 1)
                with m.If(waiting == 0):
                    m.next = "outputs"
            with m.State("outputs"):
                take = self.y.valid & self.y.ready
                m.d.comb += self.y.ready.eq(1)
                with m.If(take):
                    m.d.sync += [took_entry.eq(1), entry_chunk.eq(chunk),
                                 entry_beat.eq(self.y.payload),
                                 index.eq(Mux(ends, 0, index_next)),
                                 index_next.eq(Mux(ends, 1, index_next + 1)),
                                 ends.eq(Mux(ends, last_index == 0, index_next == last_index))]
                    with m.If(ends):
                        m.d.sync += chunk.eq(chunk + 1)
                        with m.If(chunk == job.chunks - 1):
                            m.d.sync += [chunk.eq(0), queued.eq(0)]
                            m.next = "queue"
                            with m.If(final):
                                m.d.sync += settling.eq(self.latency)
                                m.next = "settle"
            with m.State("settle"):
                # The last sums are written back before the rows are read.
                m.d.sync += settling.eq(settling - 1)
                with m.If(settling == 1):
                    m.next = "rows"
            with m.State("rows"):
                # Rows leave token by token, a chunk per cycle while the read-out has room;
                # each chunk is cleared in the cycle after its read.
                more = sent < job.tokens
                m.d.comb += [load.addr.eq(row + chunk), readout.i.valid.eq(more)]
                with m.If(readout.i.valid & readout.i.ready):
                    m.d.sync += [chunk.eq(chunk + 1), clearing.eq(1), cleared.eq(load.addr)]
                    with m.If(chunk == job.chunks - 1):
                        m.d.sync += [chunk.eq(0), row.eq(row + self.max_chunks),
                                     sent.eq(sent + 1)]
                with m.If(~more):
                    m.d.sync += [row.eq(0), sent.eq(0)]
                    m.next = "idle"
        with m.If(clearing):
            m.d.comb += [store.en.eq(1), store.addr.eq(cleared),
                         *[store.data[k].eq(0) for k in range(self.lanes)]]
        return m
