"""Stream stage that reads neighbouring table entries from block RAM."""

from amaranth.hdl import Signal, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.credit_stream import CreditStream


class TableLookup(CreditStream):
    """Look up entries ``table[index]`` and ``table[index + 1]`` for linear interpolation.

    Each word of the memory holds a neighbouring pair, so one synchronous read (which
    yosys maps to block RAM) returns both. Every other input field passes through.

    Parameters
    ----------
    table : list of int
        Non-negative table entries; ``index`` ranges over all but the last.
    in_layout : data.StructLayout
        Input payload: an ``index`` field plus the fields to pass through.
    out_layout : data.StructLayout
        Output payload: ``low`` and ``high`` (the two entries) plus the passed fields.
    """

    def __init__(self, table: list, in_layout: data.StructLayout,
                 out_layout: data.StructLayout):
        self.entry_bits = max(max(table).bit_length(), 1)
        self.pairs = [lo | hi << self.entry_bits
                      for lo, hi in zip(table[:-1], table[1:], strict=True)]
        self.passed = [name for name, _ in out_layout if name not in ("low", "high")]
        missing = {"index", *self.passed} - {name for name, _ in in_layout}
        if missing:
            raise ValueError(f"TableLookup input lacks fields {sorted(missing)}")
        super().__init__(1, in_layout, out_layout)

    def datapath(self, m, accept):
        m.submodules.table = table = Memory(shape=unsigned(2 * self.entry_bits),
                                            depth=len(self.pairs), init=self.pairs)
        read = table.read_port()
        m.d.comb += read.addr.eq(self.i.payload.index)
        valid = Signal()
        passed = Signal(data.StructLayout({n: self.o.payload.shape()[n].shape
                                           for n in self.passed}))
        m.d.sync += valid.eq(accept)
        m.d.sync += [passed[n].eq(self.i.payload[n]) for n in self.passed]
        result = Signal(self.o.payload.shape())
        m.d.comb += [result.low.eq(read.data[:self.entry_bits]),
                     result.high.eq(read.data[self.entry_bits:])]
        m.d.comb += [result[n].eq(passed[n]) for n in self.passed]
        return valid, result
