"""Base for stream stages around a fixed-latency datapath that cannot stall."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out


class CreditStream(wiring.Component):
    """Give a fixed-latency, never-stalling datapath ``lib.stream`` ports with backpressure.

    Results land in a FIFO, and an input is accepted only when a FIFO slot is certain to be
    free when its result arrives: the FIFO's level plus the results still in flight stays
    below its depth (credits). ``i.ready`` is a register, decided a cycle ahead from
    this cycle's level, flight and acceptance, so no handshake path runs combinationally
    through a chain of stages; a depth of latency + 3 still sustains one result per cycle
    while ``o.ready`` stays high. Subclasses build the datapath in `datapath`.

    Parameters
    ----------
    latency : int
        Cycles from an accepted input to its result.
    in_shape, out_shape : shape or layout
        Payloads of ``i`` and ``o``.

    Members
    -------
    i : In(stream.Signature(in_shape))
    o : Out(stream.Signature(out_shape))
    """

    def __init__(self, latency: int, in_shape, out_shape):
        self.latency = latency
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(out_shape)),
        })

    def datapath(self, m: Module, accept: Value):
        """Build the datapath for an input taken when ``accept`` is high.

        Returns ``(valid, result)``: ``valid`` rises exactly ``latency`` cycles after
        ``accept`` with the payload's ``result``.
        """
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        depth = self.latency + 3
        m.submodules.results = results = SyncFIFO(
            width=Value.cast(self.o.payload).shape().width, depth=depth)
        accept = self.i.valid & self.i.ready
        result_valid, result = self.datapath(m, accept)

        in_flight = Signal(range(depth + 1))
        m.d.sync += in_flight.eq(in_flight + accept - result_valid)
        # Next cycle the level is at most level + result_valid and the flight is
        # in_flight + accept - result_valid: their sum bounds the slots then promised.
        m.d.sync += self.i.ready.eq(results.level + in_flight + accept < depth)
        m.d.comb += [
            results.w_en.eq(result_valid),
            results.w_data.eq(result),
            self.o.valid.eq(results.r_rdy),
            Value.cast(self.o.payload).eq(results.r_data),
            results.r_en.eq(self.o.ready),
        ]
        return m
