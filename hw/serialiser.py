"""A wide stream sent as several narrow beats."""

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def beat_bits(shape, beats: int) -> int:
    """Bits of each of the ``beats`` beats that carry a payload of ``shape``."""
    if beats < 1:
        raise ValueError(f"a payload goes in 1 beat or more, not {beats}")
    return -(-Shape.cast(shape).width // beats)


class Serialiser(wiring.Component):
    """Sends each payload as ``beats`` beats, its low bits first (the last beat padded
    with zeros). A new payload is taken as its predecessor's last beat leaves.

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
        Beats of a payload are still to leave.
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
        held = Signal(bits * self.beats)
        left = Signal(range(self.beats + 1))  # beats still to leave
        m.d.comb += [self.o.valid.eq(left != 0), self.o.payload.eq(held[:bits]),
                     self.busy.eq(left != 0),
                     self.i.ready.eq((left == 0) | ((left == 1) & self.o.ready))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [held.eq(held >> bits), left.eq(left - 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(Value.cast(self.i.payload)), left.eq(self.beats)]
        return m
