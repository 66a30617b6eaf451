"""The attention unit: one head at a time, P queries at once, with attention reordering."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.attention_output import AttentionOutput, burst_layout
from hw.attention_scores import AttentionScores, chunk_layout
from hw.attention_softmax import AttentionSoftmax, factors_layout, lane_flags
from hw.attention_softmax import step_layout as scores_layout
from hw.beside import Beside
from hw.chain import Chain
from hw.delay import delayed, kept_copies
from pyref.config import ConfigError, HardwareConfig
from pyref.formats import ACC, ACT, ATTN, PROB


def step_layout(lanes: int) -> data.StructLayout:
    """What the sequencer knows of a step: the lanes' flags, whether a query starts (on lane
    ``key``), and whether no lane is busy (the head is done)."""
    return data.StructLayout({"flags": lane_flags(lanes), "starts": 1, "done": 1})


def command_layout(max_tokens: int, max_chunks: int) -> data.StructLayout:
    """One job: a head of ``tokens`` queries and keys, rows of ``chunks`` chunks, scores
    scaled by ``2^-scale_shift``; or, with ``flush``, the rows still held (of ``chunks``
    chunks) are sent out. Flush before the row length changes."""
    return data.StructLayout({"tokens": range(max_tokens + 1), "chunks": range(max_chunks + 1),
                              "scale_shift": range(ACC.frac - 2 * ACT.frac + 1), "flush": 1})


class AttentionUnit(wiring.Component):
    """``softmax(q k^T / sqrt(d)) v`` per head, bit-exact with
    `pyref.intmodel.attention_head` at ``parallelism = P``.

    Attention reordering (Edge-MoE): keys stream past ``P`` lanes, one key per step, and
    lane ``j`` starts a new query whenever the key index is ``j``, so query ``q`` sees the
    keys from ``q mod P`` on, wrapping (`pyref.intmodel.key_order`). Each step then reads
    one key row and one value row, at most one query row, and sends at most one finished
    row, whatever ``P`` is: the bandwidth stays constant while the work per step grows with
    ``P``. Lanes keep their state across jobs, so heads follow one another without a gap;
    a ``flush`` job sends the last rows out.

    A step takes one cycle per chunk of ``width`` values, and at least `min_step_cycles`:
    a lane's total and output chunks are updated in loops of that many cycles, so the steps
    of short rows wait; and it waits for the previous step's burst to end.

    Streams (rows in chunks of ``width``, chunk 0 first; docs/hardware.md):

    * ``q``: the head's query rows in order.
    * ``k`` and ``v``: per step ``s``, the row of key ``s mod tokens``.
    * ``o``: the output rows in query order.

    Parameters
    ----------
    hw : HardwareConfig
        Parallelism, chunk width and the longest row.
    max_head_dim : int
        Widest head.

    Members
    -------
    cmd, q, k, v : In(stream.Signature(...))
    o : Out(stream.Signature(ArrayLayout(ACT, width)))
    error : Out(1)
        A command without chunks, or without tokens and not a flush, was dropped (sticky).
    """

    def __init__(self, hw: HardwareConfig, max_head_dim: int):
        lanes, width = hw.parallelism, hw.attention_width
        self.lanes, self.width, self.max_tokens = lanes, width, hw.max_tokens
        self.max_chunks = -(-max_head_dim // width)
        if hw.max_tokens * (1 << (PROB.frac + ACT.bits - 1)) >= 1 << (ATTN.bits - 1):
            raise ConfigError(f"rows of {hw.max_tokens} tokens could overflow the {ATTN} "
                              "attention accumulator")
        extra = {"flags": lane_flags(lanes), "chunks": range(self.max_chunks + 1),
                 "finalize": 1, "final_lane": range(max(lanes, 2))}
        scores = AttentionScores(lanes, width, self.max_chunks)
        softmax = AttentionSoftmax(lanes, hw.max_tokens)
        # Values wait from their key's arrival until the step's burst reads them.
        in_flight = scores.latency + softmax.latency + 2 * self.max_chunks + 2
        self.v_depth = 1 << in_flight.bit_length()
        self.output = AttentionOutput(lanes, width, self.max_chunks, self.v_depth)
        extra["base"] = range(self.v_depth)
        slot = data.StructLayout({**{n: f.shape for n, f in chunk_layout(lanes, width,
                                                                          self.max_chunks)},
                                  **extra})
        scored = data.StructLayout({"score": data.ArrayLayout(ACT.shape(), lanes), **extra})
        self.pipe = Chain(
            Beside(scores, list(chunk_layout(lanes, width, self.max_chunks).members),
                   ["score"], slot, scored),
            Beside(softmax, list(scores_layout(lanes).members),
                   list(factors_layout(lanes).members), scored,
                   burst_layout(lanes, self.max_chunks, self.v_depth)),
            self.output)
        self.fifo_depth = 1 << (self.pipe.latency + 2 * self.max_chunks).bit_length()
        self.min_step_cycles = max(AttentionSoftmax.min_spacing, self.output.loop_latency)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(hw.max_tokens, self.max_chunks))),
            "q": In(stream.Signature(data.ArrayLayout(ACT.shape(), width))),
            "k": In(stream.Signature(data.ArrayLayout(ACT.shape(), width))),
            "v": In(stream.Signature(data.ArrayLayout(ACT.shape(), width))),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), width))),
            "error": Out(1),
        })

    @property
    def peak_macs_per_cycle(self) -> int:
        """Per lane and value: one product for the score and one for the output."""
        return 2 * self.lanes * self.width

    @property
    def latency(self) -> int:
        """Cycles from a step's last chunk to the first chunk of the row it finishes."""
        return self.pipe.latency + 3

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipe = pipe = self.pipe
        # Buffered: the block RAM's own read register is the FIFO's head. Behind a plain
        # SyncFIFO's combinational read, yosys moved the taker's register into the block
        # RAM, and the RAM's slow output then crossed the chip in one cycle.
        m.submodules.results = results = SyncFIFOBuffered(width=ACT.bits * self.width,
                                                          depth=self.fifo_depth)
        m.d.comb += [results.w_en.eq(pipe.o.valid), results.w_data.eq(pipe.o.payload),
                     self.o.valid.eq(results.r_rdy), self.o.payload.eq(results.r_data),
                     results.r_en.eq(self.o.ready)]
        lanes = self.lanes

        job = Signal(self.cmd.payload.shape())
        busy = Signal()
        base = Signal(range(self.max_tokens + 2 * lanes))  # first query of the block: b * P
        key = Signal(range(max(self.max_tokens, lanes)))
        chunk = Signal(range(self.max_chunks))
        write_at = Signal(range(self.v_depth))  # value buffer, one chunk per slot
        step_base = Signal(range(self.v_depth))
        step_finalize = Signal()  # `finalize` as decided at the step's first chunk
        pending = Signal(lanes)  # lanes holding a finished row not yet sent
        promised = Signal(range(self.fifo_depth + 1))  # output beats in flight or waiting

        bad = (self.cmd.payload.chunks == 0) | (~self.cmd.payload.flush
                                                & (self.cmd.payload.tokens == 0))

        # The step's lanes, registered: they are worked out for the step that comes next
        # (after this one, or the first of a new command) and taken when it begins. Lane j
        # works on the query of block `base` once the key index has reached j, and on the
        # previous block's before that; which blocks have a query on which lane is kept in
        # registers too, so only comparisons with constants are left.
        step = Signal(step_layout(lanes))
        current = Signal(lanes)  # lane j has a query in block `base`
        previous = Signal(lanes)  # ... in block `base - P`
        upcoming = Signal(lanes)  # ... in block `base + P`
        last_key, before_last = Signal.like(key), Signal.like(key)  # tokens - 1, tokens - 2
        m.d.sync += upcoming.eq(Cat(base + lanes + j < job.tokens for j in range(lanes)))
        wraps = ~job.flush & (key == last_key)
        following = Signal(step_layout(lanes))
        for j in range(lanes):
            # Whether the next step's key index is j (lane j's first key), j - 1 (its last,
            # wrapping) or past j - 1.
            if j == 0:
                at_first, reached = wraps, 1
                at_last = Mux(wraps, last_key == 0, key == before_last)
            else:
                at_first, reached = ~wraps & (key == j - 1), ~wraps & (key >= j - 1)
                at_last = wraps if j == 1 else ~wraps & (key == j - 2)
            this_block = Mux(wraps, upcoming[j], current[j])
            has = Mux(reached, this_block, Mux(wraps, current[j], previous[j])) & ~job.flush
            m.d.comb += [following.flags.active[j].eq(has),
                         following.flags.first[j].eq(at_first & this_block & ~job.flush),
                         following.flags.last[j].eq(has & at_last)]
        m.d.comb += [following.starts.eq(following.flags.first.as_value().any()),
                     following.done.eq(~job.flush & ~following.flags.active.as_value().any())]
        # The first step of a command: only lane 0 has a query, which ends at once if there
        # is a single token.
        tokens = self.cmd.payload.tokens
        fresh = Signal(step_layout(lanes))
        flush_cmd = self.cmd.payload.flush
        m.d.comb += [fresh.flags.active[0].eq(~flush_cmd), fresh.flags.first[0].eq(~flush_cmd),
                     fresh.flags.last[0].eq(~flush_cmd & (tokens == 1)),
                     fresh.starts.eq(~flush_cmd), fresh.done.eq(0)]
        flags, starts, done, flush = step.flags, step.starts, step.done, job.flush
        # Whether `chunk` is 0, and whether it is the job's last, kept beside it in
        # registers: the issue decision below then starts at registers.
        first_chunk, last_chunk = Signal(init=1), Signal(init=1)
        finalize = Mux(first_chunk, (key < lanes) & pending.bit_select(key, 1), step_finalize)
        done = Mux(flush, 0, ~flags.active.as_value().any())
        # Worked out from the command when it is taken, so the issue decision below compares
        # registers only: the last chunk's index and the gap after this job's steps. And
        # ``spare``, the FIFO room a finished row needs less the beats promised, kept up
        # to date as one counter: the decision reads its sign, not a compare.
        last_index = Signal.like(chunk)
        spare = Signal(range(-self.fifo_depth, self.fifo_depth + 1))
        job_gap = Signal(range(max(self.min_step_cycles, self.max_chunks) + 1))
        credit = spare >= 0
        # The last chunks of two steps are at least min_step_cycles apart, and at least as
        # far as the earlier step has chunks: its burst in AttentionOutput must end before
        # the next begins (a flush may be followed by shorter rows).
        issue = Signal()
        longest = max(self.min_step_cycles, self.max_chunks)
        since_last = Signal(range(longest + 1), init=longest)
        gap = Signal(range(longest + 1))
        gap_met = Signal(init=1)  # since_last >= gap, worked out a cycle ahead
        with m.If(issue & last_chunk):
            m.d.sync += [since_last.eq(1), gap.eq(job_gap), gap_met.eq(job_gap <= 1)]
        with m.Elif(since_last < longest):
            m.d.sync += [since_last.eq(since_last + 1), gap_met.eq(since_last + 1 >= gap)]

        # An issued chunk enters the pipeline, and its values the value buffer, a cycle
        # later from registers: the issue decision then drives only the pops of its
        # inputs, not the pipeline's and the buffer's far-spread loads as well.
        slot = Signal(pipe.i.payload.shape())
        m.d.comb += [
            issue.eq(busy & ~done & (~last_chunk | gap_met)
                     & (flush | (self.k.valid & self.v.valid))
                     & (~starts | self.q.valid) & (~(first_chunk & finalize) | credit)),
            pipe.i.valid.eq(delayed(m, issue, 1, "issued")),
            pipe.i.payload.eq(delayed(m, slot, 1, "issued_slot", reset_less=True)),
            slot.k.eq(self.k.payload), slot.q.eq(self.q.payload),
            slot.starts.eq(starts), slot.start_lane.eq(key), slot.chunk.eq(chunk),
            slot.last.eq(last_chunk),
            slot.pre_shift.eq(ACC.frac - 2 * ACT.frac - job.scale_shift),
            slot.flags.eq(flags), slot.chunks.eq(job.chunks),
            slot.finalize.eq(finalize), slot.final_lane.eq(key),
            slot.base.eq(Mux(first_chunk, write_at, step_base)),
            self.k.ready.eq(issue & ~flush), self.v.ready.eq(issue & ~flush),
            self.q.ready.eq(issue & starts),
            self.output.v_en.eq(delayed(m, issue & ~flush, 1, "value_written")),
            self.output.v_addr.eq(delayed(m, write_at, 1, "value_at", reset_less=True)),
            self.output.v_data.eq(delayed(m, self.v.payload, 1, "value", reset_less=True)),
        ]
        # The next command is taken in the cycle that finds the head done.
        with m.If(busy & done):
            m.d.sync += busy.eq(0)
        m.d.comb += self.cmd.ready.eq(~busy | done)
        with m.If(issue & last_chunk):
            m.d.sync += step.eq(following)
            with m.If(wraps):
                m.d.sync += [previous.eq(current), current.eq(upcoming)]
        # A beat taken from the FIFO counts a cycle late, from a register: the FIFO and its
        # taker may sit far from this counter, and the count only errs on the safe side.
        # A kept one: yosys merged a plain register with the taker's own copy of the same
        # handshake, which sat by the taker.
        [taken] = kept_copies(m, self.o.valid & self.o.ready, 1, "taken")
        # A finished row's promise counts a cycle late too, from a register, so the issue
        # decision reaches no adder: promises come at steps' first chunks, two cycles apart
        # or more (a step of one chunk is min_step_cycles long), so the next credit check
        # sees it.
        promise = Mux(delayed(m, issue & first_chunk & finalize, 1, "promising"), job.chunks, 0)
        m.d.sync += [promised.eq(promised + promise - taken), spare.eq(spare - promise + taken)]
        with m.If(self.cmd.valid & self.cmd.ready):
            with m.If(bad):
                m.d.sync += self.error.eq(1)
            with m.Else():
                # A command is taken only when nothing issues; a promise may still count.
                chunks = self.cmd.payload.chunks
                m.d.sync += [last_index.eq(chunks - 1),
                             spare.eq(self.fifo_depth - chunks - promised - promise + taken),
                             job_gap.eq(Mux(chunks > self.min_step_cycles, chunks,
                                            self.min_step_cycles))]
                m.d.sync += [job.eq(self.cmd.payload), busy.eq(1), base.eq(0), key.eq(0),
                             chunk.eq(0), first_chunk.eq(1), last_chunk.eq(chunks == 1),
                             step.eq(fresh), previous.eq(0),
                             current.eq(Cat(j < tokens for j in range(lanes))),
                             last_key.eq(tokens - 1), before_last.eq(tokens - 2)]

        with m.If(issue):
            m.d.sync += [write_at.eq(write_at + ~flush), chunk.eq(chunk + 1),
                         first_chunk.eq(last_chunk),
                         last_chunk.eq(Mux(last_chunk, last_index == 0,
                                           chunk + 1 == last_index))]
            with m.If(first_chunk):
                m.d.sync += [step_base.eq(write_at), step_finalize.eq(finalize)]
                with m.If(key < lanes):
                    m.d.sync += pending.bit_select(key, 1).eq(starts)
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), key.eq(key + 1)]
                with m.If(flush & (key == lanes - 1)):
                    m.d.sync += busy.eq(0)
                with m.If(wraps):
                    m.d.sync += [key.eq(0), base.eq(base + lanes)]
        return m
