"""A write port: a unit's output beats, as words stored where a descriptor says."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.address_generator import AddressGenerator, port_descriptor_layout
from hw.memory_port import ADDRESS_BITS


def write_layout(word_bits: int, address_bits: int = ADDRESS_BITS) -> data.StructLayout:
    """A one-word write for the memory arbiter."""
    return data.StructLayout({"addr": address_bits, "word": word_bits})


class PortWriter(wiring.Component):
    """Joins or cuts a unit's beats into words and writes each to the descriptor's next
    address.

    A beat narrower than a word fills it low bits first; a wider beat becomes
    consecutive words, its low bits first.

    Parameters
    ----------
    word_bits, beat_bits : int
        One divides the other.
    address_bits : int
        Bits of the word addresses written to (`port_descriptor`).

    Members
    -------
    desc : In(stream.Signature(port_descriptor_layout(address_bits)))
    i : In(stream.Signature(beat_bits))
    req : Out(stream.Signature(write_layout(word_bits, address_bits)))
    busy : Out(1)
        Words of a queued descriptor are still to be written (a word of the unit's that
        waits for a later descriptor does not count).
    """

    def __init__(self, word_bits: int, beat_bits: int, address_bits: int = ADDRESS_BITS):
        if word_bits % beat_bits and beat_bits % word_bits:
            raise ValueError(f"beats of {beat_bits} bits neither fill nor split {word_bits}-bit "
                             "words")
        self.word_bits, self.beat_bits, self.address_bits = word_bits, beat_bits, address_bits
        super().__init__({
            "desc": In(stream.Signature(port_descriptor_layout(address_bits))),
            "i": In(stream.Signature(beat_bits)),
            "req": Out(stream.Signature(write_layout(word_bits, address_bits))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.addresses = addresses = AddressGenerator(self.address_bits)
        wiring.connect(m, wiring.flipped(self.desc), addresses.desc)
        word = Signal(self.word_bits)
        full = Signal()  # `word` is complete and waits for its address
        take = addresses.o.valid & self.req.ready
        m.d.comb += [self.req.valid.eq(full & addresses.o.valid),
                     self.req.payload.addr.eq(addresses.o.payload.addr),
                     self.req.payload.word.eq(word),
                     addresses.o.ready.eq(full & self.req.ready),
                     # A word that waits in `word` belongs to a later descriptor.
                     self.busy.eq(addresses.busy | self.desc.valid)]
        with m.If(full & take):
            m.d.sync += full.eq(0)
        space = ~full | take

        if self.beat_bits <= self.word_bits:
            per_word = self.word_bits // self.beat_bits
            part = Signal(range(per_word))
            m.d.comb += self.i.ready.eq(space)
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [word.word_select(part, self.beat_bits).eq(self.i.payload),
                             part.eq(part + 1)]
                with m.If(part == per_word - 1):
                    m.d.sync += [part.eq(0), full.eq(1)]
        else:
            per_beat = self.beat_bits // self.word_bits
            part = Signal(range(per_beat))
            last = part == per_beat - 1
            m.d.comb += self.i.ready.eq(space & last)
            with m.If(self.i.valid & space):
                m.d.sync += [word.eq(self.i.payload.word_select(part, self.word_bits)),
                             full.eq(1), part.eq(part + 1)]
                with m.If(last):
                    m.d.sync += part.eq(0)
        return m
