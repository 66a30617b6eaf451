"""The k largest values of each row of a stream, with their positions."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyref.formats import PROB


def choice_layout(k: int, max_len: int) -> data.StructLayout:
    """A row's ``k`` best positions and their values, best first."""
    return data.StructLayout({"index": data.ArrayLayout(range(max_len), k),
                              "value": data.ArrayLayout(PROB.shape(), k)})


class TopK(wiring.Component):
    """The ``k`` largest `PROB` values of each row, best first; among equal values the
    earlier position wins (as a stable sort, `pyref.intmodel.route`).

    Each value is registered as it arrives (its source may be a FIFO's slow read), compared
    with the sorted list of ``k`` registers in the next cycle, and inserted in the one after
    (from the registered comparisons: no compare and select in one cycle): a value every
    other cycle, and the choice is ready three cycles after a row's last value. Rows need at
    least ``k`` values.

    Parameters
    ----------
    k, max_len : int

    Members
    -------
    i : In(stream.Signature(StructLayout({"value": PROB, "last": 1})))
    o : Out(stream.Signature(choice_layout(k, max_len)))
    """

    def __init__(self, k: int, max_len: int):
        self.k, self.max_len = k, max_len
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"value": PROB.shape(), "last": 1}))),
            "o": Out(stream.Signature(choice_layout(k, max_len))),
        })

    def elaborate(self, platform):
        m = Module()
        best = Signal(choice_layout(self.k, self.max_len))
        position = Signal(range(self.max_len))
        held = Signal(self.i.payload.shape(), reset_less=True)
        held_valid = Signal()
        value = held.value
        # The list is sorted, so the slots the new value beats (strictly, or empty ones: a
        # row's first values fill them) are the tail from its place on; that tail moves down.
        beats = Signal(self.k)
        compared = Signal()
        with m.If(held_valid & ~compared):
            m.d.sync += [compared.eq(1),
                         *[beats[r].eq((value > best.value[r]) | (position <= r))
                           for r in range(self.k)]]
        inserted = Signal(choice_layout(self.k, self.max_len))
        for r in range(self.k):
            m.d.comb += [inserted.index[r].eq(best.index[r]), inserted.value[r].eq(best.value[r])]
            with m.If(beats[r]):
                m.d.comb += [inserted.index[r].eq(position), inserted.value[r].eq(value)]
                if r:
                    with m.If(beats[r - 1]):
                        m.d.comb += [inserted.index[r].eq(best.index[r - 1]),
                                     inserted.value[r].eq(best.value[r - 1])]

        insert = compared & (~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(~held_valid | insert)
        with m.If(insert):
            m.d.sync += [held_valid.eq(0), compared.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(insert):
            m.d.sync += [best.eq(inserted), position.eq(position + 1)]
            with m.If(held.last):
                m.d.sync += [self.o.payload.eq(inserted), self.o.valid.eq(1), position.eq(0)]
        return m
