"""A wide stream sent as several narrow beats."""

from amaranth.hdl import C, Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def beat_bits(shape, beats: int) -> int:
    """Bits of each of the ``beats`` beats that carry a payload of ``shape``."""
    if beats < 1:
        raise ValueError(f"a payload goes in 1 beat or more, not {beats}")
    return -(-Shape.cast(shape).width // beats)


class Serialiser(wiring.Component):
    """Sends each payload as ``beats`` beats, its low bits first (the last beat padded
    with zeros), and takes it as its last beat leaves.

    The beats are cut from ``i.payload`` as it stands: a stream's source holds its payload
    until it is taken, so no copy is kept (where many links start from one source, copies
    would crowd it).

    Parameters
    ----------
    shape : shape-like
        The payload.
    beats : int

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(beat_bits(shape, beats)))
    busy : Out(1)
        Some of a payload's beats have left, not all.
    """

    def __init__(self, shape, beats: int):
        self.shape, self.beats = shape, beats
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(beat_bits(shape, beats))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bits = len(self.o.payload)
        payload = Value.cast(self.i.payload)
        padded = Cat(payload, C(0, bits * self.beats - len(payload)))
        index = Signal(range(self.beats))  # the beat to leave next
        last = index == self.beats - 1
        m.d.comb += [self.o.valid.eq(self.i.valid),
                     self.o.payload.eq(padded.word_select(index, bits)),
                     self.i.ready.eq(self.o.ready & last), self.busy.eq(index != 0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(Mux(last, 0, index + 1))
        return m
