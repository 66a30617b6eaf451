"""Streaming softmax: rows of scores in, probabilities and each row's state out."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.chain import Chain
from hw.credit_stream import CreditStream
from hw.memory_read import MemoryRead
from hw.softmax_normalise import SoftmaxNormalise, replay_layout
from hw.softmax_state import SoftmaxState, stats_layout
from pyref.formats import ACT, PROB


def input_layout(lanes: int) -> data.StructLayout:
    """One score per lane; ``last`` ends the rows."""
    return data.StructLayout({"score": data.ArrayLayout(ACT.shape(), lanes), "last": 1})


def output_layout(lanes: int) -> data.StructLayout:
    """One probability per lane, with the rows' state (`hw.softmax_state.stats_layout`)."""
    return data.StructLayout({"p": data.ArrayLayout(PROB.shape(), lanes),
                              **{n: f.shape for n, f in stats_layout(lanes)}, "last": 1})


class SoftmaxUnit(wiring.Component):
    """Softmax of rows of 1 to ``max_len`` scores, one score per lane per cycle.

    Lanes carry independent rows of equal length (heads, or queries of one head). The first
    pass (`SoftmaxState`) takes the running maximum and total of each row while the scores
    go into a circular buffer in block RAM. Once a row's state is known, the buffer replays
    it through `SoftmaxNormalise`. The buffer holds a whole row plus the first pass's latency,
    so a stream of rows of any length flows at one score per cycle: the cycles are the scores
    plus the last row's length plus a fixed latency. Each output beat carries its row's
    state, which attention needs to rescale its own accumulator.

    A row longer than ``max_len`` is cut into rows of ``max_len`` (and a rest), and
    ``overflow`` rises and stays up until reset.

    Parameters
    ----------
    lanes : int
        Rows processed side by side.
    max_len : int
        Longest row.
    interval : int
        Fewest cycles between scores (`SoftmaxState`): 2 halves the rate and lifts the
        clock.

    Members
    -------
    i : In(stream.Signature(input_layout(lanes)))
    o : Out(stream.Signature(output_layout(lanes)))
    overflow : Out(1)
    """

    def __init__(self, lanes: int = 1, max_len: int = 256, interval: int = 1):
        if lanes < 1 or max_len < 1:
            raise ValueError(f"SoftmaxUnit needs lanes >= 1 and max_len >= 1, got {lanes} "
                             f"and {max_len}")
        self.lanes, self.max_len = lanes, max_len
        self.state = SoftmaxState(lanes, max_len, interval)
        self.interval = interval
        # Scores wait from their arrival until the replay of their row: a row plus the first
        # pass, with room for the replay's start.
        self.depth = 1 << (max_len + self.state.latency + 4).bit_length()
        scores = data.ArrayLayout(ACT.shape(), lanes)
        self.buffer = Memory(shape=scores, depth=self.depth, init=[])
        self.write = self.buffer.write_port()
        replayed = replay_layout(lanes)
        request = data.StructLayout({"addr": range(self.depth),
                                     **{n: f.shape for n, f in replayed if n != "score"}})
        self.replay = CreditStream(Chain(MemoryRead({"score": self.buffer}, request, replayed),
                                         SoftmaxNormalise(lanes)))
        # Rows from their last score's arrival to their last probability's departure.
        self.rows = self.state.latency + self.replay.latency + 8
        super().__init__({
            "i": In(stream.Signature(input_layout(lanes))),
            "o": Out(stream.Signature(output_layout(lanes))),
            "overflow": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from a row's last score to its first probability, with ``o.ready`` high:
        the first pass, the state FIFO (its memory and its output register), the replay and
        its result FIFO."""
        return self.state.latency + 2 + self.replay.latency + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.state = state = self.state
        m.submodules.replay = replay = self.replay
        stats = stats_layout(self.lanes).size
        # A row's state and length are read through registers: the replay's issue logic
        # and its operands then start at flip-flops, not at a LUT memory's read mux.
        m.submodules.pending = pending = SyncFIFOBuffered(width=stats, depth=self.rows)
        m.submodules.lengths = lengths = SyncFIFOBuffered(width=self.max_len.bit_length(),
                                                          depth=self.rows)
        m.submodules.emitted = emitted = SyncFIFO(width=stats, depth=self.rows)

        stored = Signal(range(self.depth + 1))  # scores in the buffer, not yet replayed
        open_rows = Signal(range(self.rows + 1))
        accept = self.i.valid & self.i.ready
        replay_issue = replay.i.valid & replay.i.ready
        departs = self.o.valid & self.o.ready & self.o.payload.last

        # -- first pass: every accepted score goes to the buffer and to SoftmaxState
        head, count = Signal(range(self.depth)), Signal(range(self.max_len))
        first = Signal(init=1)
        ends = self.i.payload.last | (count == self.max_len - 1)
        ready = (stored < self.depth) & (open_rows < self.rows)
        if self.interval == 2:
            recent = Signal()  # a score was taken in the last cycle
            m.d.sync += recent.eq(accept)
            ready &= ~recent
        m.d.comb += [
            self.i.ready.eq(ready),
            self.write.en.eq(accept), self.write.addr.eq(head),
            self.write.data.eq(self.i.payload.score),
            state.i.valid.eq(accept), state.i.payload.score.eq(self.i.payload.score),
            state.i.payload.first.eq(first), state.i.payload.last.eq(ends),
            pending.w_en.eq(state.o.valid), pending.w_data.eq(state.o.payload),
            lengths.w_en.eq(accept & ends), lengths.w_data.eq(count + 1),
        ]
        with m.If(accept):
            m.d.sync += [head.eq(head + 1), first.eq(ends),
                         count.eq(Mux(ends, 0, count + 1))]
            with m.If(ends & ~self.i.payload.last):
                m.d.sync += self.overflow.eq(1)

        # -- replay: a row starts once its state is known, then one score per cycle
        replaying = Signal()
        left = Signal(range(self.max_len + 1))
        row = Signal(stats_layout(self.lanes))
        tail = Signal(range(self.depth))
        now = Signal(stats_layout(self.lanes))
        remaining = Mux(replaying, left, lengths.r_data)
        m.d.comb += [
            now.eq(Mux(replaying, row, pending.r_data)),
            replay.i.valid.eq(replaying | pending.r_rdy),
            replay.i.payload.addr.eq(tail),
            replay.i.payload.maximum.eq(now.maximum),
            replay.i.payload.r.eq(now.r),
            replay.i.payload.e.eq(now.e),
            replay.i.payload.last.eq(remaining == 1),
            pending.r_en.eq(replay_issue & ~replaying),
            lengths.r_en.eq(replay_issue & ~replaying),
            emitted.w_en.eq(replay_issue & ~replaying),
            emitted.w_data.eq(pending.r_data),
        ]
        with m.If(replay_issue):
            m.d.sync += [tail.eq(tail + 1), replaying.eq(remaining != 1),
                         left.eq(remaining - 1), row.eq(now)]

        m.d.sync += [stored.eq(stored + accept - replay_issue),
                     open_rows.eq(open_rows + (accept & ends) - departs)]

        # -- output: probabilities joined with their row's state
        m.d.comb += [
            self.o.valid.eq(replay.o.valid),
            replay.o.ready.eq(self.o.ready),
            self.o.payload.p.eq(replay.o.payload.p),
            self.o.payload.last.eq(replay.o.payload.last),
            emitted.r_en.eq(departs),
        ]
        state_out = data.View(stats_layout(self.lanes), emitted.r_data)
        m.d.comb += [self.o.payload[n].eq(state_out[n]) for n, _ in stats_layout(self.lanes)]
        return m
