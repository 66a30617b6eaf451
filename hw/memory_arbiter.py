"""One memory port shared by many readers and writers, a word at a time."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.coding import PriorityEncoder
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.memory_port import request_layout
from hw.port_writer import write_layout


class MemoryArbiter(wiring.Component):
    """Grants the `MemoryPort` to one client per request, round robin.

    Every request is one word. A reader's words come back in the order it asked for
    them; the arbiter keeps the reader of each outstanding word in a small FIFO, and
    readers take their words at once (they ask only when they have room). A writer's word
    goes to the port a cycle after its request is granted.

    Parameters
    ----------
    word_bits : int
    readers, writers : int

    Members
    -------
    read : In(stream.Signature(32)).array(readers)
    read_data : Out(stream.Signature(word_bits)).array(readers)
    write : In(stream.Signature(write_layout(word_bits))).array(writers)
    port_read_req, port_write_req : Out(stream.Signature(request_layout()))
    port_read_data : In(stream.Signature(word_bits))
    port_write_data : Out(stream.Signature(word_bits))
    """

    def __init__(self, word_bits: int, readers: int, writers: int, outstanding: int = 8):
        self.word_bits, self.readers, self.writers = word_bits, readers, writers
        self.outstanding = outstanding
        super().__init__({
            "read": In(stream.Signature(32)).array(readers),
            "read_data": Out(stream.Signature(word_bits)).array(readers),
            "write": In(stream.Signature(write_layout(word_bits))).array(writers),
            "port_read_req": Out(stream.Signature(request_layout())),
            "port_read_data": In(stream.Signature(word_bits)),
            "port_write_req": Out(stream.Signature(request_layout())),
            "port_write_data": Out(stream.Signature(word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        clients = [*self.read, *self.write]
        n = len(clients)
        m.submodules.above = above = PriorityEncoder(n)
        m.submodules.any = first = PriorityEncoder(n)
        m.submodules.tags = tags = SyncFIFO(width=max(1, (self.readers - 1).bit_length()),
                                            depth=self.outstanding)

        # Round robin: the first client asking after the last one granted, else the first.
        last = Signal(range(n))
        asking = Signal(n)
        m.d.comb += [asking[k].eq(c.valid) for k, c in enumerate(clients)]
        m.d.comb += [first.i.eq(asking), above.i.eq(asking & ~((2 << last) - 1))]
        chosen = Signal(range(n))
        m.d.comb += chosen.eq(first.o)
        with m.If(~above.n):
            m.d.comb += chosen.eq(above.o)
        is_read = chosen < self.readers
        # A read is asked for only while its tag has room.
        m.d.comb += [self.port_read_req.valid.eq(~first.n & is_read & tags.w_rdy),
                     self.port_read_req.payload.beats.eq(1),
                     self.port_write_req.valid.eq(~first.n & ~is_read),
                     self.port_write_req.payload.beats.eq(1)]
        for k, c in enumerate(self.read):
            with m.If(chosen == k):
                m.d.comb += [self.port_read_req.payload.addr.eq(c.payload),
                             c.ready.eq(self.port_read_req.ready & tags.w_rdy)]
        write_word = Signal(self.word_bits)
        for k, c in enumerate(self.write):
            with m.If(chosen == self.readers + k):
                m.d.comb += [self.port_write_req.payload.addr.eq(c.payload.addr),
                             c.ready.eq(self.port_write_req.ready)]
                with m.If(self.port_write_req.ready):
                    m.d.sync += write_word.eq(c.payload.word)
        granted = ((self.port_read_req.valid & self.port_read_req.ready)
                   | (self.port_write_req.valid & self.port_write_req.ready))
        with m.If(granted):
            m.d.sync += last.eq(chosen)

        # The granted write's word follows its request.
        with m.If(self.port_write_data.ready):
            m.d.sync += self.port_write_data.valid.eq(0)
        with m.If(self.port_write_req.valid & self.port_write_req.ready):
            m.d.sync += self.port_write_data.valid.eq(1)
        m.d.comb += self.port_write_data.payload.eq(write_word)

        # Read words go back to whoever asked.
        m.d.comb += [tags.w_en.eq(self.port_read_req.valid & self.port_read_req.ready),
                     tags.w_data.eq(chosen), self.port_read_data.ready.eq(1),
                     tags.r_en.eq(self.port_read_data.valid)]
        for k, c in enumerate(self.read_data):
            m.d.comb += [c.payload.eq(self.port_read_data.payload),
                         c.valid.eq(self.port_read_data.valid & (tags.r_data == k))]
        return m
