"""Streaming LayerNorm: rows of activations in, normalised, scaled and shifted rows out."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hls import flow
from hls.flow import EXPONENT, MANTISSA, SQUARES, TOTAL
from hw.arith import registered_sum, times_constant
from hw.chain import Chain
from hw.column_memory import ColumnMemory
from hw.credit_stream import CreditStream
from hw.delay import delayed, short_of, wrapping_count
from hw.kernels import kernel_pipe
from hw.layernorm_apply import DIM, LayerNormApply, apply_layout
from hw.memory_read import MemoryRead
from pyref.formats import ACT, WEIGHT


def command_layout(max_tokens: int, max_chunks: int) -> data.StructLayout:
    """One LayerNorm layer: ``tokens`` rows of ``chunks`` beats; ``eps`` in the units of
    `pyref.intmodel.layernorm_eps`."""
    return data.StructLayout({"tokens": range(max_tokens + 1), "chunks": range(max_chunks + 1),
                              "eps": flow.KERNELS["ln_stats"].inputs["eps"].shape()})


def params_layout(lanes: int) -> data.StructLayout:
    """A chunk of the layer's ``gamma`` and ``beta``."""
    return data.StructLayout({"gamma": data.ArrayLayout(WEIGHT.shape(), lanes),
                              "beta": data.ArrayLayout(WEIGHT.shape(), lanes)})


class LayerNormUnit(wiring.Component):
    """`pyref.intmodel.layernorm` over rows of ``chunks * lanes`` values, a chunk per cycle.

    A layer starts with ``cmd``, then its ``gamma`` and ``beta`` on ``params`` (a beat per
    chunk), which stay on chip; then its rows on ``i``. The first pass adds each row's
    values and their squares (exact integers, so in any order) while the row goes into a
    circular buffer in block RAM; at the row's end the ``ln_stats`` kernel (XLS) turns the
    sums into the rsqrt ``(r, e)``. The buffer then replays the row through ``ln_apply``
    (XLS) on every lane, with its columns' ``gamma`` and ``beta``. Like `SoftmaxUnit`, the
    buffer holds a row plus the stats' latency, so rows flow at one chunk per cycle. The
    next ``cmd`` is taken once the layer's last chunk has left.

    Parameters
    ----------
    lanes : int
        Values per beat (the linear unit's ``tile_in``).
    max_tokens, max_chunks : int
        Rows per layer, and beats per row.

    Members
    -------
    cmd : In(stream.Signature(command_layout(...)))
    params : In(stream.Signature(params_layout(lanes)))
    i : In(stream.Signature(ArrayLayout(ACT, lanes)))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes)))
    """

    def __init__(self, lanes: int, max_tokens: int, max_chunks: int):
        self.lanes, self.max_tokens, self.max_chunks = lanes, max_tokens, max_chunks
        self.stats = kernel_pipe("ln_stats")
        # A row, plus the chunks that arrive while its stats are made, plus the replay's start.
        self.depth = 1 << (max_chunks + self.stats.latency + 4).bit_length()
        # Rows whose stats are made or wait for their replay (a row of one chunk each cycle).
        self.rows = self.stats.latency + 4
        row = data.ArrayLayout(ACT.shape(), lanes)
        # A chunk is replayed after its row's stats, gamma and beta are read after they
        # load: no word is used in the cycle it is written.
        self.buffer = ColumnMemory(shape=row, depth=self.depth, collisions_undefined=True)
        self.gammas, self.betas = (
            ColumnMemory(shape=data.ArrayLayout(WEIGHT.shape(), lanes), depth=max_chunks,
                         collisions_undefined=True) for _ in range(2))
        self.writes = {name: memory.write_port() for name, memory in
                       (("x", self.buffer), ("gamma", self.gammas), ("beta", self.betas))}
        replayed = apply_layout(lanes)
        request = data.StructLayout({"addr": range(self.depth), "chunk": range(max_chunks),
                                     **{n: f.shape for n, f in replayed
                                        if n not in ("x", "gamma", "beta")}})
        self.apply = LayerNormApply(lanes)
        self.replay = CreditStream(Chain(
            MemoryRead({"x": self.buffer, "gamma": self.gammas, "beta": self.betas}, request,
                       replayed, addresses={"gamma": "chunk", "beta": "chunk"}),
            self.apply))
        #: Cycles from a chunk's acceptance to its sums' adding into the row's.
        self.sum_stage = 2 + (lanes - 1).bit_length()
        super().__init__({
            "cmd": In(stream.Signature(command_layout(max_tokens, max_chunks))),
            "params": In(stream.Signature(params_layout(lanes))),
            "i": In(stream.Signature(row)),
            "o": Out(stream.Signature(row)),
        })

    @property
    def latency(self) -> int:
        """Cycles from a row's last chunk to its first output chunk, with ``o.ready`` high:
        the sums, the stats (registered in), the rsqrt FIFO, the replay and its FIFO."""
        return self.sum_stage + 1 + self.stats.latency + 1 + self.replay.latency + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.stats = stats = self.stats
        m.submodules.replay = replay = self.replay
        # A row's total is read from a register (the FIFO's head): it is written the stats'
        # latency before its rsqrt, which starts the row, so the head's cycle costs none.
        m.submodules.totals = totals = SyncFIFOBuffered(width=TOTAL.bits, depth=self.rows)
        m.submodules.rsqrts = rsqrts = SyncFIFO(width=MANTISSA.bits + EXPONENT.bits,
                                                depth=self.rows)

        job = Signal(self.cmd.payload.shape())
        dim = Signal(DIM)
        loading, feeding, busy = Signal(), Signal(), Signal()
        m.d.comb += self.cmd.ready.eq(~busy)
        taken = self.cmd.valid & self.cmd.ready
        with m.If(taken):
            m.d.sync += [job.eq(self.cmd.payload), busy.eq(1), loading.eq(1),
                         dim.eq(times_constant(self.cmd.payload.chunks, self.lanes))]
        m.d.comb += [stats.i.payload.dim.eq(dim), stats.i.payload.eps.eq(job.eps),
                     self.apply.dim.eq(dim)]

        # -- the layer's gamma and beta, a chunk per beat
        loaded, _, loaded_last = wrapping_count(m, range(self.max_chunks), taken,
                                                self.cmd.payload.chunks,
                                                self.params.valid & loading, "loaded")
        m.d.comb += [self.params.ready.eq(loading),
                     self.writes["gamma"].en.eq(self.params.valid & loading),
                     self.writes["gamma"].addr.eq(loaded),
                     self.writes["gamma"].data.eq(self.params.payload.gamma),
                     self.writes["beta"].en.eq(self.params.valid & loading),
                     self.writes["beta"].addr.eq(loaded),
                     self.writes["beta"].data.eq(self.params.payload.beta)]
        with m.If(self.params.valid & loading & loaded_last):
            m.d.sync += [loading.eq(0), feeding.eq(1)]

        # -- first pass: each chunk into the buffer and into the row's sums
        stored = Signal(range(self.depth + 1))  # chunks in the buffer, not yet replayed
        waiting = Signal(range(self.rows + 1))  # rows ended, their replay not started
        head = Signal(range(self.depth))
        accept = self.i.valid & self.i.ready
        chunk, _, ends = wrapping_count(m, range(self.max_chunks), taken,
                                        self.cmd.payload.chunks, accept, "chunk")
        *_, last_row = wrapping_count(m, range(self.max_tokens), taken, self.cmd.payload.tokens,
                                      accept & ends, "row")
        m.d.comb += [self.writes["x"].en.eq(accept), self.writes["x"].addr.eq(head),
                     self.writes["x"].data.eq(self.i.payload)]
        with m.If(accept):
            m.d.sync += head.eq(head + 1)
            with m.If(ends & last_row):
                m.d.sync += feeding.eq(0)

        # The chunk is registered, squared (a multiplier per lane) and summed over the
        # lanes in registered trees; the row's sums then take one add per cycle.
        x = delayed(m, self.i.payload, 1, "x")
        squares = [Signal(SQUARES.shape(), name=f"square{k}", reset_less=True)
                   for k in range(self.lanes)]
        m.d.sync += [s.eq(x[k] * x[k]) for k, s in enumerate(squares)]
        values = delayed(m, x, 1, "values")
        chunk_total, levels = registered_sum(m, [values[k] for k in range(self.lanes)],
                                             "chunk_total", TOTAL.shape())
        chunk_squares, _ = registered_sum(m, squares, "chunk_squares", SQUARES.shape())
        at_sum = 2 + levels
        assert at_sum == self.sum_stage
        summed = delayed(m, accept, at_sum, "summed")
        starts = delayed(m, accept & (chunk == 0), at_sum, "starts")
        finishes = delayed(m, accept & ends, at_sum, "finishes")
        total = Signal(TOTAL.shape())
        sum_squares = Signal(SQUARES.shape())
        new_total = Mux(starts, 0, total) + chunk_total
        new_squares = Mux(starts, 0, sum_squares) + chunk_squares
        with m.If(summed):
            m.d.sync += [total.eq(new_total), sum_squares.eq(new_squares)]
        m.d.sync += [stats.i.valid.eq(summed & finishes), stats.i.payload.total.eq(new_total),
                     stats.i.payload.squares.eq(new_squares),
                     totals.w_en.eq(summed & finishes), totals.w_data.eq(new_total)]
        m.d.comb += [rsqrts.w_en.eq(stats.o.valid),
                     rsqrts.w_data.eq(stats.o.payload)]

        # -- replay: a row starts once its rsqrt is known, then a chunk per cycle
        # Whether an rsqrt waits, and whether the chunk is its row's last, are registers:
        # a row's start pops two FIFOs that the placer may set far apart.
        replaying = Signal()
        tail = Signal(range(self.depth))
        rsqrt = data.View(stats.o.payload.shape(), rsqrts.r_data)
        row_total = Signal(TOTAL.shape())
        row_r, row_e = Signal(MANTISSA.shape()), Signal(EXPONENT.shape())
        issue = replay.i.valid & replay.i.ready
        starting = issue & ~replaying
        position, _, final = wrapping_count(m, range(self.max_chunks), taken,
                                            self.cmd.payload.chunks, issue, "position")
        has_rsqrt = short_of(m, rsqrts.level, 0, starting, rsqrts.w_en, "has_rsqrt")
        m.d.comb += [
            replay.i.valid.eq(replaying | has_rsqrt),
            replay.i.payload.addr.eq(tail), replay.i.payload.chunk.eq(position),
            replay.i.payload.total.eq(Mux(replaying, row_total, totals.r_data)),
            replay.i.payload.r.eq(Mux(replaying, row_r, rsqrt.r)),
            replay.i.payload.e.eq(Mux(replaying, row_e, rsqrt.e)),
            totals.r_en.eq(starting), rsqrts.r_en.eq(starting),
        ]
        with m.If(starting):
            m.d.sync += [row_total.eq(totals.r_data), row_r.eq(rsqrt.r), row_e.eq(rsqrt.e)]
        with m.If(issue):
            m.d.sync += [tail.eq(tail + 1), replaying.eq(~final)]
        # The replay's handshake is late in the cycle and far away, so its chunks and rows
        # leave the counts a cycle late: the buffer and the row count are one fuller than
        # they are for that cycle, and both have room to spare.
        issued = delayed(m, issue, 1, "issued")
        started = delayed(m, starting, 1, "started")
        m.d.sync += [stored.eq(stored + accept - issued),
                     waiting.eq(waiting + (accept & ends) - started)]
        # The first pass's ready: the buffer's and the row count's room as flags in
        # registers (`short_of`), as the ready reaches the far queue of chunks.
        room = short_of(m, stored, self.depth, accept, issued, "room")
        rows_free = short_of(m, waiting, self.rows, accept & ends, started, "rows_free")
        m.d.comb += self.i.ready.eq(feeding & room & rows_free)

        # -- output; the layer ends with its last chunk
        wiring.connect(m, replay.o, wiring.flipped(self.o))
        sent = self.o.valid & self.o.ready
        *_, out_chunk_last = wrapping_count(m, range(self.max_chunks), taken,
                                            self.cmd.payload.chunks, sent, "out_chunk")
        *_, out_row_last = wrapping_count(m, range(self.max_tokens), taken,
                                          self.cmd.payload.tokens, sent & out_chunk_last,
                                          "out_row")
        with m.If(sent & out_chunk_last & out_row_last):
            m.d.sync += busy.eq(0)
        return m
