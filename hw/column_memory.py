"""Deep memories cut into columns that each fit one ECP5 block RAM, so no read goes through
a depth multiplexer."""

from amaranth.hdl import Elaboratable, Module, Shape, Signal, Value
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2

from hw.delay import kept_copies

#: Memory attribute that lets synthesis treat a read of a row in the cycle it is written as
#: undefined (`scripts.bitstream` sets yosys's collision mask on such memories).
COLLISIONS_UNDEFINED = "lumoe_collisions_undefined"

#: DP16KD's aspect ratios as (rows, bits per row), widest first.
DP16KD_GEOMETRIES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def column_bits(depth: int) -> int:
    """The widest column of ``depth`` rows that one DP16KD holds."""
    for rows, bits in DP16KD_GEOMETRIES:
        if depth <= rows:
            return bits
    raise ValueError(f"a memory of {depth} rows is deeper than one DP16KD ({rows}); "
                     "split it by address, or lower max_tokens / max_inputs in the config")


class ColumnMemory(Elaboratable):
    """A synchronous memory with `amaranth.lib.memory.Memory`'s ports, built as columns.

    Left to itself, yosys maps a deep, wide memory onto block RAMs in a wide aspect ratio
    stacked in depth, and every read then passes a multiplexer over the stack: on ECP5 that
    multiplexer after the block RAM's 5.6 ns clock-to-output is the slowest path of the
    linear unit and the expert combine. Here every column is as wide as one DP16KD can be at
    this depth, so each column is exactly one block RAM and the read data goes straight to
    its register.

    Parameters
    ----------
    shape : ShapeLike
        Shape of a row (a layout is fine; ports give views of it).
    depth : int
        Rows.
    collisions_undefined : bool
        The caller never uses a word read from a row in the cycle that row is written. A
        DP16KD gives an undefined word then; without this promise yosys keeps the
        simulated behaviour (the old word) by delaying each write a cycle and adding a
        bypass multiplexer after the block RAM, which also keeps the next register out of
        the block RAM's output register. Simulation still gives the old word.
    columns_per_copy : int, optional
        Register every port on its way in, with a copy of its address and enable for each
        group of this many columns (`hw.delay.kept_copies`), so each copy
        drives a few nearby block RAMs where one net would cross the chip to all of them.
        Every port then acts a cycle later: a read's data comes two cycles after its
        address (`read_latency`).
    """

    def __init__(self, *, shape, depth: int, collisions_undefined: bool = False,
                 columns_per_copy: int | None = None):
        self.shape, self.depth = shape, depth
        self.attrs = {COLLISIONS_UNDEFINED: "1"} if collisions_undefined else {}
        bits = Shape.cast(shape).width
        step = column_bits(depth)
        self.spans = [(low, min(low + step, bits)) for low in range(0, bits, step)]
        self.columns_per_copy = columns_per_copy
        #: Cycles from a read's address to its data.
        self.read_latency = 1 if columns_per_copy is None else 2
        self._reads, self._writes = [], []

    def read_port(self, *, transparent_for=()) -> ReadPort:
        """A read port (``en``, ``addr``, ``data`` one cycle later), transparent for the
        listed write ports of this memory."""
        port = ReadPort.Signature(addr_width=ceil_log2(self.depth), shape=self.shape).create()
        self._reads.append((port, tuple(transparent_for)))
        return port

    def write_port(self) -> WritePort:
        """A write port (``en``, ``addr``, ``data``) of whole rows."""
        port = WritePort.Signature(addr_width=ceil_log2(self.depth), shape=self.shape).create()
        self._writes.append(port)
        return port

    def _control(self, m: Module, port, kind: str, index: int, column: int) -> tuple:
        """``(en, addr)`` of ``port`` as column ``column`` sees them: the port's own, or
        its group's registered copies."""
        if self.columns_per_copy is None:
            return port.en, port.addr
        name = f"{kind}{index}"
        if name not in self._copies:
            groups = -(-len(self.spans) // self.columns_per_copy)
            self._copies[name] = list(zip(
                kept_copies(m, port.en, groups, f"{name}_en"),
                kept_copies(m, port.addr, groups, f"{name}_addr", reset_less=True),
                strict=True))
        return self._copies[name][column // self.columns_per_copy]

    def _data(self, m: Module, port, index: int, low: int, high: int):
        """Bits ``low:high`` of write port ``index``'s data, registered with its controls."""
        bits = Value.cast(port.data)[low:high]
        if self.columns_per_copy is None:
            return bits
        register = Signal(high - low, name=f"write{index}_data{low}", reset_less=True)
        m.d.sync += register.eq(bits)
        return register

    def elaborate(self, platform):
        m = Module()
        self._copies = {}
        for index, (low, high) in enumerate(self.spans):
            column = Memory(shape=high - low, depth=self.depth, init=[], attrs=self.attrs)
            m.submodules[f"column{index}"] = column
            writes = []
            for number, port in enumerate(self._writes):
                write = column.write_port()
                en, addr = self._control(m, port, "write", number, index)
                m.d.comb += [write.en.eq(en), write.addr.eq(addr),
                             write.data.eq(self._data(m, port, number, low, high))]
                writes.append(write)
            for number, (port, transparent) in enumerate(self._reads):
                read = column.read_port(transparent_for=[
                    writes[self._writes.index(w)] for w in transparent])
                en, addr = self._control(m, port, "read", number, index)
                m.d.comb += [read.en.eq(en), read.addr.eq(addr),
                             Value.cast(port.data)[low:high].eq(read.data)]
        return m
