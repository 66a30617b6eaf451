"""A stream carried across the chip: registers on the way, a queue at the far end."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.delay import delayed, short_of
from hw.deserialiser import Deserialiser
from hw.serialiser import Serialiser, beat_bits


class StreamLink(wiring.Component):
    """A stream between two blocks far apart on the chip, with no path in one cycle from
    one end to the other.

    Beats travel through ``stages`` registers into a queue at the far end, and the
    sender knows the queue's room by credits: it starts with ``depth`` (the queue's
    size), spends one a beat, and gets one back ``stages`` cycles after the far end takes
    a beat. So ``i.ready`` is a register of the sender's own (whether credits are left),
    ``o.valid`` and ``o.payload`` come from the queue's output registers, and every long
    wire starts and ends at a register; placement can spread the stages along the way. A depth of
    2 x ``stages`` + 3 keeps a beat a cycle flowing; a smaller one carries ``depth`` beats
    per 2 x ``stages`` + 3 cycles.

    A wide payload that passes seldom may cross as several narrow beats (``beats``): a
    `Serialiser` at the sender, a `Deserialiser` at the far end, and a quarter of the
    wires and registers on the way for four beats.

    Parameters
    ----------
    shape : shape-like
        The payload.
    stages : int
        Registers each way.
    depth : int, optional
        The far queue's size in beats, 3 or more (default: 2 x ``stages`` + 3, a beat a
        cycle).
    beats : int
        Beats per payload. With more than one, the sender holds a payload until it is
        taken (the `Serialiser` keeps no copy).

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    pending : Out(1)
        At the sender: payloads sent are not all taken at the far end yet.
    """

    def __init__(self, shape, stages: int = 1, depth: int | None = None, beats: int = 1):
        if depth is not None and depth < 3:
            # The queue's output register takes a beat a cycle after its memory does: a
            # beat that followed another into a one-entry memory would be lost.
            raise ValueError(f"a StreamLink needs a queue of 3 beats or more, got {depth}")
        beat_bits(shape, beats)  # refuses a count below 1
        self.shape, self.stages, self.depth = shape, stages, depth or 2 * stages + 3
        self.beats = beats
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # `near` and `far`: the streams of beats at the two ends.
        if self.beats > 1:
            m.submodules.serialiser = serialiser = Serialiser(self.shape, self.beats)
            m.submodules.deserialiser = deserialiser = Deserialiser(self.shape, self.beats)
            wiring.connect(m, wiring.flipped(self.i), serialiser.i)
            wiring.connect(m, deserialiser.o, wiring.flipped(self.o))
            # The far end's beats count at the sender as long as they would in the queue.
            near, far = serialiser.o, deserialiser.i
            holding = serialiser.busy | delayed(m, deserialiser.busy, self.stages,
                                                name="gathering")
        else:
            near, far, holding = self.i, self.o, 0
        width = Value.cast(near.payload).shape().width
        m.submodules.queue = queue = SyncFIFOBuffered(width=width, depth=self.depth)
        credits = Signal(range(self.depth + 1), init=self.depth)
        sent = near.valid & near.ready
        taken = far.valid & far.ready
        returned = delayed(m, taken, self.stages, name="returned")
        m.d.sync += credits.eq(credits - sent + returned)
        # The sender's enables start at a flip-flop that the placer keeps by the sender,
        # not at a compare of a counter that the returned credits pull toward the far end.
        has_credit = short_of(m, credits, 0, sent, returned, "has_credit")
        m.d.comb += [near.ready.eq(has_credit),
                     self.pending.eq((credits != self.depth) | holding),
                     queue.w_en.eq(delayed(m, sent, self.stages, name="sent")),
                     queue.w_data.eq(delayed(m, near.payload, self.stages, name="beat",
                                             reset_less=True)),
                     far.valid.eq(queue.r_rdy),
                     Value.cast(far.payload).eq(queue.r_data),
                     queue.r_en.eq(far.ready)]
        return m
