"""The host link: `pyref.host_link`'s byte protocol onto the accelerator's host ports."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.address_generator import descriptor_layout
from pyref import host_link, isa


class HostLink(wiring.Component):
    """Parses host commands from ``rx`` bytes, drives the accelerator, answers on ``tx``.

    ``W`` sends a contiguous write descriptor and then a word per ``word_bits / 8`` bytes;
    ``R`` a read descriptor, and each word read goes out a byte at a time; ``S`` starts a
    task and counts cycles until ``busy`` falls. Replies leave through one shift register,
    lowest byte first (`pyref.host_link` has the protocol). Each reply is loaded in a state
    of its own, a cycle after the decision to give it (a word read waits in a register): a
    far busy flag, a byte's opcode or a read word's arrival then loads the state register
    only, not the wide reply.

    Parameters
    ----------
    word_bits : int
        The accelerator's memory word.
    memory_words : int
        Its memory, reported by ``I``.

    Members
    -------
    rx : In(stream.Signature(8))
    tx : Out(stream.Signature(8))
    write_desc, read_desc : Out(stream.Signature(descriptor_layout()))
    write : Out(stream.Signature(word_bits))
    read : In(stream.Signature(word_bits))
    memory_busy : In(1)
        The accelerator's host ports are still moving words.
    memory_ready : In(1)
        The memory serves requests. ``I`` is answered only then, so a host that starts
        with it never sends words into a memory still starting up.
    start : Out(stream.Signature(8))
    busy : In(1)
        The accelerator runs a task.
    """

    def __init__(self, word_bits: int, memory_words: int):
        self.word_bits, self.memory_words = word_bits, memory_words
        desc = stream.Signature(descriptor_layout())
        super().__init__({
            "rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
            "write_desc": Out(desc), "read_desc": Out(desc),
            "write": Out(stream.Signature(word_bits)), "read": In(stream.Signature(word_bits)),
            "memory_busy": In(1), "memory_ready": In(1),
            "start": Out(stream.Signature(8)), "busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        word_bytes = self.word_bits // 8
        identity = host_link.MAGIC + bytes([word_bytes]) + self.memory_words.to_bytes(4, "little")
        header_bytes = max(host_link.HEADERS.values())
        header = Signal(8 * header_bytes)
        base, count, task = header[:32], header[32:48], header[-8:]
        header_left = Signal(range(header_bytes + 1))
        # Whether a count has bytes to go is a register of its own beside it: the stream's
        # ready and the wide registers' enables then start at flip-flops, not compares.
        header_more = Signal()
        opcode = Signal(8)
        words_left = Signal(16)
        word = Signal(self.word_bits)
        word_left = Signal(range(word_bytes + 1))
        word_more = Signal()
        cycles = Signal(32)

        # Replies: bytes leave from the bottom of `reply`; `reply_left` counts them.
        reply = Signal(max(self.word_bits, 8 * len(identity)))
        reply_left = Signal(range(len(reply) // 8 + 1))
        reply_idle = Signal(init=1)
        m.d.comb += [self.tx.valid.eq(~reply_idle), self.tx.payload.eq(reply[:8])]
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += [reply.eq(reply >> 8), reply_left.eq(reply_left - 1),
                         reply_idle.eq(reply_left == 1)]

        def answer(text: bytes | None = None, value=None):
            """Queue a reply: constant ``text``, then ``value``'s bytes."""
            prefix = Const(int.from_bytes(text, "little"), 8 * len(text)) if text else Cat()
            parts = Cat(prefix, value) if value is not None else prefix
            m.d.sync += [reply.eq(parts), reply_left.eq(len(parts) // 8), reply_idle.eq(0)]

        # `pyref.isa.Descriptor.contiguous` in one loop: the count fits its 16 bits.
        descriptor = {"base": base, "words": count, "lanes": 0, "count0": count, "stride0": 1,
                      **{f"{k}{i}": v for i in range(1, isa.LOOPS)
                         for k, v in (("count", 1), ("stride", 0))}}
        for port in (self.write_desc, self.read_desc):
            m.d.comb += [port.payload[name].eq(value) for name, value in descriptor.items()]
        m.d.comb += [self.write.payload.eq(word), self.start.payload.eq(task)]

        with m.FSM():
            with m.State("opcode"):
                m.d.comb += self.rx.ready.eq(reply_idle)
                with m.If(self.rx.valid & self.rx.ready):
                    m.d.sync += opcode.eq(self.rx.payload)
                    with m.Switch(self.rx.payload):
                        for op, length in host_link.HEADERS.items():
                            with m.Case(op[0]):
                                m.d.sync += [header_left.eq(length),
                                             header_more.eq(length != 0)]
                                m.next = "header"
                        with m.Default():
                            m.next = "unknown"
            with m.State("unknown"):
                answer(host_link.UNKNOWN)
                m.next = "opcode"
            with m.State("header"):
                m.d.comb += self.rx.ready.eq(header_more)
                with m.If(self.rx.valid & self.rx.ready):
                    m.d.sync += [header.eq(Cat(header[8:], self.rx.payload)),
                                 header_left.eq(header_left - 1),
                                 header_more.eq(header_left != 1)]
                with m.If(~header_more):
                    with m.Switch(opcode):
                        with m.Case(host_link.IDENTIFY[0]):
                            with m.If(self.memory_ready):
                                answer(identity)
                                m.next = "opcode"
                        with m.Case(host_link.WRITE[0]):
                            m.next = "write_desc"
                        with m.Case(host_link.READ[0]):
                            m.next = "read_desc"
                        with m.Case(host_link.START[0]):
                            m.next = "start"
            with m.State("write_desc"):
                m.d.comb += self.write_desc.valid.eq(1)
                with m.If(self.write_desc.ready):
                    m.d.sync += [words_left.eq(count), word_left.eq(word_bytes),
                                 word_more.eq(1)]
                    m.next = "write_words"
            with m.State("write_words"):
                # A word gathers its bytes lowest first, then waits for the port.
                m.d.comb += [self.rx.ready.eq(word_more), self.write.valid.eq(~word_more)]
                with m.If(self.rx.valid & self.rx.ready):
                    m.d.sync += [word.eq(Cat(word[8:], self.rx.payload)),
                                 word_left.eq(word_left - 1), word_more.eq(word_left != 1)]
                with m.If(self.write.valid & self.write.ready):
                    m.d.sync += [words_left.eq(words_left - 1), word_left.eq(word_bytes),
                                 word_more.eq(1)]
                    with m.If(words_left == 1):
                        m.next = "write_drain"
            with m.State("write_drain"):
                with m.If(~self.memory_busy):
                    m.next = "written"
            with m.State("written"):
                answer(host_link.WRITTEN)
                m.next = "opcode"
            with m.State("read_desc"):
                m.d.comb += self.read_desc.valid.eq(1)
                with m.If(self.read_desc.ready):
                    m.d.sync += words_left.eq(count)
                    m.next = "read_words"
            with m.State("read_words"):
                # A word read waits in `word`, then goes out from a state of its own. `word`
                # takes the port's payload in every cycle of the state, so its enable is
                # the state's; the cycle the word is taken leaves it holding it.
                m.d.comb += self.read.ready.eq(reply_idle)
                m.d.sync += word.eq(self.read.payload)
                with m.If(self.read.valid & self.read.ready):
                    m.d.sync += words_left.eq(words_left - 1)
                    m.next = "read_reply"
            with m.State("read_reply"):
                answer(value=word)
                with m.If(words_left == 0):
                    m.next = "opcode"
                with m.Else():
                    m.next = "read_words"
            with m.State("start"):
                m.d.comb += self.start.valid.eq(1)
                with m.If(self.start.ready):
                    m.d.sync += cycles.eq(0)
                    m.next = "run"
            with m.State("run"):
                # `busy` rises the cycle after the start is taken. The count it falls at
                # goes out from the next state (one more, less the one it started below).
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(~self.busy):
                    m.next = "done"
            with m.State("done"):
                answer(host_link.DONE, cycles)
                m.next = "opcode"
        return m
