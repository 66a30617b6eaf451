"""The external-memory port: a set width, a bandwidth limit, and byte counters."""

from fractions import Fraction

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.ram_model import RamModel

#: Word addresses the port takes.
ADDRESS_BITS = 32


def request_layout() -> data.StructLayout:
    """A burst: ``beats`` words from word address ``addr`` on."""
    return data.StructLayout({"addr": ADDRESS_BITS, "beats": 16})


class MemoryPort(wiring.Component):
    """A model of the accelerator's one external-memory port (Edge-MoE: 256-bit AXI), with
    the memory behind it.

    Protocol (docs/hardware.md): a read request gives ``beats`` words on ``read_data`` in
    address order; a write request takes ``beats`` words from ``write_data``. Requests are
    served one at a time, in order, reads before writes; the next is taken as the last
    word of the current one moves. The port moves at most ``rate`` words per
    cycle (a fraction up to 1: credits accumulate each cycle, a word spends one), shared by
    both directions, and counts every byte it moves.

    The memory behind it holds ``depth`` words (a power of two) and repeats through the
    32-bit word address space: the model measures traffic, not capacity.

    Parameters
    ----------
    width : int
        Bits per word.
    depth : int
        Words of memory.
    rate : Fraction
        Words per cycle, at most 1.
    init : list of int
        The memory image.
    verilog_model : bool
        Keep the words in `hw.ram_model.RamModel` (Verilator only, no ``init``): Amaranth
        cannot emit a memory of millions of words.

    Members
    -------
    read_req, write_req : In(stream.Signature(request_layout()))
    read_data : Out(stream.Signature(width))
    write_data : In(stream.Signature(width))
    read_bytes, write_bytes : Out(48)
    """

    def __init__(self, width: int, depth: int, rate=Fraction(1), init=(),
                 verilog_model: bool = False):
        rate = Fraction(rate)
        if width % 8 or not 0 < rate <= 1 or depth & (depth - 1):
            raise ValueError(f"MemoryPort needs whole bytes, 0 < rate <= 1 and a power-of-two "
                             f"depth, got {width} bits, {rate} and {depth}")
        self.width, self.depth, self.rate = width, depth, rate
        if verilog_model and list(init):
            raise ValueError("the Verilog memory model starts at zero: load it through the port")
        self.memory = (RamModel(width, depth.bit_length() - 1) if verilog_model
                       else Memory(shape=width, depth=depth, init=list(init)))
        super().__init__({
            "read_req": In(stream.Signature(request_layout())),
            "read_data": Out(stream.Signature(width)),
            "write_req": In(stream.Signature(request_layout())),
            "write_data": In(stream.Signature(width)),
            "read_bytes": Out(48), "write_bytes": Out(48),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = self.memory
        m.submodules.out = out = SyncFIFO(width=self.width, depth=4)
        if isinstance(self.memory, RamModel):
            ram = self.memory
            read_addr, read_data = ram.read_addr, ram.read_data
            write_en, write_addr, write_data = ram.write_en, ram.write_addr, ram.write_data
        else:
            load, store = self.memory.read_port(), self.memory.write_port()
            read_addr, read_data = load.addr, load.data
            write_en, write_addr, write_data = store.en, store.addr, store.data
        wiring.connect(m, wiring.flipped(self.read_data), out.r_stream)

        # Credits: `num` each cycle, `den` per word, capped at one word (no bursts).
        num, den = self.rate.numerator, self.rate.denominator
        credit = Signal(range(2 * den + 1), init=den)
        can_move = credit >= den

        reading = Signal()
        writing = Signal()
        addr = Signal(ADDRESS_BITS)
        left = Signal(16)
        in_flight = Signal()  # a word read last cycle, landing in the FIFO now
        m.d.sync += in_flight.eq(0)

        # The FIFO has room for this word and the one already on its way.
        room = out.level + in_flight < out.depth
        read_word = reading & can_move & room
        write_word = writing & can_move & self.write_data.valid
        moved = read_word | write_word
        m.d.comb += [
            read_addr.eq(addr[:len(read_addr)]), out.w_en.eq(in_flight),
            out.w_data.eq(read_data),
            self.write_data.ready.eq(writing & can_move),
            write_en.eq(write_word), write_addr.eq(addr[:len(write_addr)]),
            write_data.eq(self.write_data.payload),
        ]
        with m.If(moved):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += [reading.eq(0), writing.eq(0)]
        # The next request is taken as the last word of this one moves, so requests of
        # one word each still move a word per cycle.
        free = (~reading & ~writing) | (moved & (left == 1))
        m.d.comb += [self.read_req.ready.eq(free),
                     self.write_req.ready.eq(free & ~self.read_req.valid)]
        with m.If(self.read_req.valid & self.read_req.ready & (self.read_req.payload.beats != 0)):
            m.d.sync += [reading.eq(1), addr.eq(self.read_req.payload.addr),
                         left.eq(self.read_req.payload.beats)]
        with m.If(self.write_req.valid & self.write_req.ready
                  & (self.write_req.payload.beats != 0)):
            m.d.sync += [writing.eq(1), addr.eq(self.write_req.payload.addr),
                         left.eq(self.write_req.payload.beats)]
        with m.If(read_word):
            m.d.sync += [in_flight.eq(1), self.read_bytes.eq(self.read_bytes + self.width // 8)]
        with m.If(write_word):
            m.d.sync += self.write_bytes.eq(self.write_bytes + self.width // 8)
        after = credit + num - Mux(moved, den, 0)
        m.d.sync += credit.eq(Mux(after > den, den, after))
        return m
