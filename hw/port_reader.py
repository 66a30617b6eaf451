"""A read port: a descriptor's words from memory, as a unit's input beats."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.address_generator import AddressGenerator, port_descriptor_layout
from hw.delay import delayed
from hw.memory_port import ADDRESS_BITS
from pyref.isa import READ_BUFFER_WORDS


class PortReader(wiring.Component):
    """Streams the words of each descriptor from memory and cuts or joins them into beats.

    Addresses come from an `AddressGenerator`; a word is asked for only when the buffer
    is sure to have room for it when it comes back (the words asked for and not yet taken
    stay below ``depth``), so the memory's answers are never held up. A beat narrower than
    a word is cut from it, low bits first, ``lanes`` beats per word (0: all); a wider beat
    joins consecutive words, the first in the low bits.

    Parameters
    ----------
    word_bits, beat_bits : int
        One divides the other.
    depth : int
        Words buffered: enough to cover the memory's round trip at a word per cycle.
    address_bits : int
        Bits of the word addresses asked for (`port_descriptor`).

    Members
    -------
    desc : In(stream.Signature(port_descriptor_layout(address_bits)))
    req : Out(stream.Signature(address_bits))
        Word addresses for the memory arbiter.
    data : In(stream.Signature(word_bits))
        The words asked for, in order; always taken.
    o : Out(stream.Signature(beat_bits))
    busy : Out(1)
        Words of a descriptor are still to be asked for.
    """

    def __init__(self, word_bits: int, beat_bits: int, depth: int = READ_BUFFER_WORDS,
                 address_bits: int = ADDRESS_BITS):
        if word_bits % beat_bits and beat_bits % word_bits:
            raise ValueError(f"beats of {beat_bits} bits neither split nor fill {word_bits}-bit "
                             "words")
        self.word_bits, self.beat_bits, self.depth = word_bits, beat_bits, depth
        self.address_bits = address_bits
        super().__init__({
            "desc": In(stream.Signature(port_descriptor_layout(address_bits))),
            "req": Out(stream.Signature(address_bits)),
            "data": In(stream.Signature(word_bits)),
            "o": Out(stream.Signature(beat_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.addresses = addresses = AddressGenerator(self.address_bits)
        # Each word's last beat (its lanes, less one) is worked out before it enters the
        # buffer: the pop below then compares two small registers.
        per_word = max(1, self.word_bits // self.beat_bits)
        entry = data.StructLayout({"word": self.word_bits, "last": range(per_word)})
        # The buffer's head is a register: the unit's side (the beat's valid, its cut or
        # joined payload, and whatever takes it) starts at flip-flops, not at a LUT-RAM read
        # and a compare of its level.
        m.submodules.words = words = SyncFIFOBuffered(width=entry.size, depth=self.depth)
        m.submodules.lanes = lanes = SyncFIFO(width=8, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.desc), addresses.desc)

        # Credits: words asked for and not yet taken out of the buffer. A word taken
        # counts a cycle late: the unit that takes it may sit far from where words are
        # asked for, and the count only errs on the safe side for that cycle.
        asked = Signal(range(self.depth + 1))
        ask = self.req.valid & self.req.ready
        pop = delayed(m, words.r_en & words.r_rdy, 1, name="popped")
        m.d.sync += asked.eq(asked + ask - pop)
        m.d.comb += [self.req.valid.eq(addresses.o.valid & (asked < self.depth)),
                     self.req.payload.eq(addresses.o.payload.addr),
                     addresses.o.ready.eq(self.req.ready & (asked < self.depth)),
                     self.busy.eq(addresses.busy | self.desc.valid),
                     # Each word's lanes travel beside it (asked and answered in order).
                     lanes.w_en.eq(ask), lanes.w_data.eq(addresses.o.payload.lanes),
                     self.data.ready.eq(1),
                     words.w_en.eq(self.data.valid), lanes.r_en.eq(self.data.valid)]
        written, head = data.View(entry, words.w_data), data.View(entry, words.r_data)
        m.d.comb += [written.word.eq(self.data.payload),
                     written.last.eq(Mux(lanes.r_data == 0, per_word, lanes.r_data) - 1)]

        if self.beat_bits <= self.word_bits:
            part = Signal(range(per_word))
            m.d.comb += [self.o.valid.eq(words.r_rdy),
                         self.o.payload.eq(head.word.word_select(part, self.beat_bits)),
                         words.r_en.eq(self.o.ready & (part == head.last))]
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += part.eq(part + 1)
                with m.If(part == head.last):
                    m.d.sync += part.eq(0)
        else:
            per_beat = self.beat_bits // self.word_bits
            joined = Signal(self.beat_bits - self.word_bits)
            part = Signal(range(per_beat))
            last = part == per_beat - 1
            m.d.comb += [self.o.valid.eq(words.r_rdy & last),
                         self.o.payload.eq(Cat(joined, head.word)),
                         words.r_en.eq(~last | self.o.ready)]
            with m.If(words.r_en & words.r_rdy):
                m.d.sync += part.eq(part + 1)
                for k in range(per_beat - 1):
                    with m.If(part == k):
                        m.d.sync += joined.word_select(k, self.word_bits).eq(head.word)
                with m.If(last):
                    m.d.sync += part.eq(0)
        return m
