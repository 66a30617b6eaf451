"""A stream carried across the chip: registers on the way, a queue at the far end."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.delay import delayed


class StreamLink(wiring.Component):
    """A stream between two blocks far apart on the chip, with no path in one cycle from
    one end to the other.

    Beats travel through ``stages`` registers into a queue at the far end, and the
    sender knows the queue's room by credits: it starts with ``depth`` (the queue's
    size), spends one a beat, and gets one back ``stages`` cycles after the far end takes
    a beat. So ``i.ready`` comes from the sender's own counter, ``o.valid`` and
    ``o.payload`` from the queue's output registers, and every long wire starts and ends
    at a register; placement can spread the stages along the way. A depth of
    2 x ``stages`` + 3 keeps a beat a cycle flowing; a smaller one carries ``depth`` beats
    per 2 x ``stages`` + 3 cycles.

    Parameters
    ----------
    shape : shape-like
        The payload.
    stages : int
        Registers each way.
    depth : int, optional
        The far queue's size, 3 or more (default: 2 x ``stages`` + 3, a beat a cycle).

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    pending : Out(1)
        At the sender: beats sent are not all taken at the far end yet.
    """

    def __init__(self, shape, stages: int = 1, depth: int | None = None):
        if depth is not None and depth < 3:
            # The queue's output register takes a beat a cycle after its memory does: a
            # beat that followed another into a one-entry memory would be lost.
            raise ValueError(f"a StreamLink needs a queue of 3 beats or more, got {depth}")
        self.shape, self.stages, self.depth = shape, stages, depth or 2 * stages + 3
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        width = Value.cast(self.o.payload).shape().width
        m.submodules.queue = queue = SyncFIFOBuffered(width=width, depth=self.depth)
        credits = Signal(range(self.depth + 1), init=self.depth)
        sent = self.i.valid & self.i.ready
        taken = self.o.valid & self.o.ready
        returned = delayed(m, taken, self.stages, name="returned")
        m.d.sync += credits.eq(credits - sent + returned)
        m.d.comb += [self.i.ready.eq(credits != 0), self.pending.eq(credits != self.depth),
                     queue.w_en.eq(delayed(m, sent, self.stages, name="sent")),
                     queue.w_data.eq(delayed(m, self.i.payload, self.stages, name="beat",
                                             reset_less=True)),
                     self.o.valid.eq(queue.r_rdy),
                     Value.cast(self.o.payload).eq(queue.r_data),
                     queue.r_en.eq(self.o.ready)]
        return m
