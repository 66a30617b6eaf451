"""A kernel whose table sits in block RAM between two XLS pipelines."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.table_lookup import TableLookup
from hw.xls_stream import XlsStream


class TableKernel(wiring.Component):
    """``index`` pipeline → `TableLookup` (block RAM) → ``finish`` pipeline, as one stream.

    XLS writes tables as multiplexers in logic; a synchronous block-RAM read between two
    pipelines is smaller and faster. Fields named alike flow from one stage to the next.

    Parameters
    ----------
    index : XlsStream
        Produces ``index`` and every field ``finish`` needs except ``low`` and ``high``.
    table : list of int
        Table entries.
    finish : XlsStream
        Consumes ``low`` and ``high`` (neighbouring entries) and the passed fields.

    Members
    -------
    i : In(stream.Signature(index's input))
    o : Out(stream.Signature(finish's output))
    """

    def __init__(self, index: XlsStream, table: list, finish: XlsStream):
        self.index, self.finish = index, finish
        self.lookup = TableLookup(table, index.o.payload.shape(), finish.i.payload.shape())
        super().__init__({
            "i": In(stream.Signature(index.i.payload.shape())),
            "o": Out(stream.Signature(finish.o.payload.shape())),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.index = self.index
        m.submodules.lookup = self.lookup
        m.submodules.finish = self.finish
        wiring.connect(m, wiring.flipped(self.i), self.index.i)
        wiring.connect(m, self.index.o, self.lookup.i)
        wiring.connect(m, self.lookup.o, self.finish.i)
        wiring.connect(m, self.finish.o, wiring.flipped(self.o))
        return m
