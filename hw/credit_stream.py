"""Backpressure for a lock-step pipeline that cannot stall."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.delay import short_of


class CreditStream(wiring.Component):
    """Give a fixed-latency, never-stalling pipeline ``lib.stream`` ports with backpressure.

    Results land in a FIFO, and an input is accepted only when a FIFO slot is certain to be
    free when its result arrives: the slots promised (results in the FIFO or in flight) stay
    below its depth (credits). ``i.ready`` is a register, decided a cycle ahead from this
    cycle's promise, acceptance and departure, so no handshake path runs combinationally
    through a chain of stages; a depth of latency + 3 still sustains one result per cycle
    while ``o.ready`` stays high.

    Parameters
    ----------
    pipe : wiring.Component
        Lock-step pipeline (see `hw.xls_pipe.lockstep`) with a ``latency`` attribute; every
        valid input gives exactly one valid output ``latency`` cycles later.
    emits : tuple of str, optional
        Path to a 1-bit field of the input payload: only inputs with it set give an output
        (the others need no slot). Without it, every input does.

    Members
    -------
    i : In(stream.Signature(pipe's input payload))
    o : Out(stream.Signature(pipe's output payload))
    """

    def __init__(self, pipe: wiring.Component, emits: tuple = ()):
        self.pipe, self.emits = pipe, emits
        self.latency = pipe.latency
        super().__init__({
            "i": In(stream.Signature(pipe.i.payload.shape())),
            "o": Out(stream.Signature(pipe.o.payload.shape())),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipe = pipe = self.pipe
        depth = self.latency + 3
        m.submodules.results = results = SyncFIFO(
            width=Value.cast(self.o.payload).shape().width, depth=depth)
        accept = self.i.valid & self.i.ready
        flag = self.i.payload
        for name in self.emits:
            flag = flag[name]
        promises = accept & flag if self.emits else accept
        m.d.comb += [pipe.i.valid.eq(accept), Value.cast(pipe.i.payload).eq(self.i.payload)]

        # Slots promised: results in the FIFO or still in flight. It grows with each accepted
        # input that will give one and shrinks with each result taken.
        promised = Signal(range(depth + 1))
        taken = self.o.valid & self.o.ready
        m.d.sync += promised.eq(promised + promises - taken)
        # The promises must stay below the depth: ``i.ready`` is a register set a cycle
        # ahead, with no adder or compare in front of it.
        m.d.comb += self.i.ready.eq(short_of(m, promised, depth, promises, taken, "room"))
        m.d.comb += [
            results.w_en.eq(pipe.o.valid),
            results.w_data.eq(pipe.o.payload),
            self.o.valid.eq(results.r_rdy),
            Value.cast(self.o.payload).eq(results.r_data),
            results.r_en.eq(self.o.ready),
        ]
        return m
