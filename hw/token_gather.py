"""The MoE layer's gather: each expert's queued tokens, read back from a buffer of the layer."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import times_constant
from hw.column_memory import ColumnMemory
from hw.credit_stream import CreditStream
from hw.delay import wrapping_count
from hw.memory_read import MemoryRead
from pyref.formats import ACT


def queue_layout(max_tokens: int) -> data.StructLayout:
    """A queue entry as the gather needs it: the token, and ``final`` on the layer's last."""
    return data.StructLayout({"token": range(max_tokens), "final": 1})


class TokenGather(wiring.Component):
    """`pyref.intmodel.gather`: a MoE layer's rows, then for every queue entry its token's row.

    The layer's ``tokens`` rows (``chunks`` beats each) arrive on ``i`` and stay in block
    RAM. Then the queue entries of the used experts (`hw.patch_reorder.PatchReorder`'s
    output, expert by expert) each send their token's row on ``o``, a chunk per cycle: the
    linear unit's input for that expert. A token chosen by ``k`` experts is read ``k``
    times, but sent to the chip only once. After the ``final`` entry the next ``cmd`` loads
    the next layer.

    Parameters
    ----------
    lanes : int
        Values per beat (the linear unit's ``tile_in``).
    max_tokens, max_chunks : int
        Rows the buffer holds, and beats per row.

    Members
    -------
    cmd : In(stream.Signature(StructLayout({"tokens", "chunks"})))
    i : In(stream.Signature(ArrayLayout(ACT, lanes)))
    queue : In(stream.Signature(queue_layout(max_tokens)))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes)))
    """

    def __init__(self, lanes: int, max_tokens: int, max_chunks: int):
        self.lanes, self.max_tokens, self.max_chunks = lanes, max_tokens, max_chunks
        depth = max_tokens * max_chunks
        row = data.ArrayLayout(ACT.shape(), lanes)
        # Rows are written, then read: never both at once.
        self.rows = ColumnMemory(shape=row, depth=depth, collisions_undefined=True)
        self.store = self.rows.write_port()
        self.read = CreditStream(MemoryRead(
            {"x": self.rows}, data.StructLayout({"addr": range(depth)}),
            data.StructLayout({"x": row}), registered=True))
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "tokens": range(max_tokens + 1), "chunks": range(max_chunks + 1)}))),
            "i": In(stream.Signature(row)),
            "queue": In(stream.Signature(queue_layout(max_tokens))),
            "o": Out(stream.Signature(row)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.read = read = self.read
        m.d.comb += [self.o.valid.eq(read.o.valid), self.o.payload.eq(read.o.payload.x),
                     read.o.ready.eq(self.o.ready)]
        # A row's chunk and the layer's token count from 0, their last values flagged in
        # registers: taking the next entry at a row's end then starts at flip-flops.
        taking = Signal()  # a command is taken
        chunk_step, token_step = Signal(), Signal()
        chunk, _, ends = wrapping_count(m, range(self.max_chunks), taking,
                                        self.cmd.payload.chunks, chunk_step, "chunk")
        _, _, last_token = wrapping_count(m, range(self.max_tokens), taking,
                                          self.cmd.payload.tokens, token_step, "token")

        # A token's row starts at token * max_chunks, in both phases.
        base = Signal(range(self.max_tokens * self.max_chunks))
        final = Signal()  # the entry being read is the layer's last
        with m.FSM():
            with m.State("idle"):
                m.d.comb += [self.cmd.ready.eq(1), taking.eq(self.cmd.valid)]
                with m.If(self.cmd.valid):
                    m.next = "load"
            with m.State("load"):
                m.d.comb += [self.i.ready.eq(1), self.store.en.eq(self.i.valid),
                             self.store.addr.eq(base + chunk),
                             self.store.data.eq(self.i.payload),
                             chunk_step.eq(self.i.valid), token_step.eq(self.i.valid & ends)]
                with m.If(self.i.valid & ends):
                    m.d.sync += base.eq(base + self.max_chunks)
                    with m.If(last_token):
                        m.d.sync += base.eq(0)
                        m.next = "entry"
            with m.State("entry"):
                m.d.comb += self.queue.ready.eq(1)
                with m.If(self.queue.valid):
                    m.next = "row"
            with m.State("row"):
                # A row's last chunk takes the next entry, if it is there, without a gap.
                m.d.comb += [read.i.valid.eq(1), read.i.payload.addr.eq(base + chunk),
                             self.queue.ready.eq(read.i.ready & ends & ~final),
                             chunk_step.eq(read.i.ready)]
                with m.If(read.i.ready & ends):
                    with m.If(final):
                        m.d.sync += [base.eq(0), final.eq(0)]
                        m.next = "idle"
                    with m.Elif(~self.queue.valid):
                        m.next = "entry"
        with m.If(self.queue.valid & self.queue.ready):
            m.d.sync += [base.eq(times_constant(self.queue.payload.token, self.max_chunks)),
                         final.eq(self.queue.payload.final)]
        return m
