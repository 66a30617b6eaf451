"""The SLM side of the optical I/O unit: ACT values to SLM amplitude codes and the pixels
they go to (`pyref.optical_io.pack`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyref.formats import ACT, SLM_PIXEL
from pyref.optical_io import COORD_BITS, COUNT_BITS, FRAME_BITS, SHIFT_BITS, SLM_FULL

#: Where a part's next tile goes: its frame, slot in the frame, grid column and top-left
#: pixel. Counting these up avoids every multiply and divide.
SLOT = data.StructLayout({"frame": FRAME_BITS, "slot": COUNT_BITS, "grid_col": COORD_BITS,
                          "row": COORD_BITS, "col": COORD_BITS})

#: A convolution's layout registers (`pyref.optical_io.FrameLayout.registers`).
LAYOUT = data.StructLayout({
    "tiles": COUNT_BITS, "rows": COORD_BITS, "cols": COORD_BITS,
    "tile_rows": COORD_BITS, "tile_cols": COORD_BITS, "top": COORD_BITS, "left": COORD_BITS,
    "grid_cols": COORD_BITS, "per_frame": COUNT_BITS, "shift": SHIFT_BITS, "neg": SLOT})

#: One value's two SLM pixels.
PIXELS = data.StructLayout({
    "pos": SLM_PIXEL.shape(), "pos_frame": FRAME_BITS, "pos_row": COORD_BITS,
    "pos_col": COORD_BITS, "neg": SLM_PIXEL.shape(), "neg_frame": FRAME_BITS,
    "neg_row": COORD_BITS, "neg_col": COORD_BITS})


class SlmPacker(wiring.Component):
    """Splits each value into positive and negative SLM codes, one value per cycle.

    A `LAYOUT` descriptor comes first, then its ``tiles * rows * cols`` values in tile
    raster order. A part's code is ``min(round(max(part, 0) / 2^shift), 255)``, ties up.

    Members
    -------
    layout : In(stream.Signature(LAYOUT))
    x : In(stream.Signature(ACT))
    o : Out(stream.Signature(PIXELS))
    """

    def __init__(self):
        super().__init__({"layout": In(stream.Signature(LAYOUT)),
                          "x": In(stream.Signature(ACT.shape())),
                          "o": Out(stream.Signature(PIXELS))})

    def elaborate(self, platform):
        m = Module()
        regs = Signal(LAYOUT)
        running = Signal()
        y, x = Signal(COORD_BITS), Signal(COORD_BITS)
        tile = Signal(COUNT_BITS)
        pos, neg = Signal(SLOT), Signal(SLOT)

        space = ~self.o.valid | self.o.ready
        take = running & self.x.valid & space
        m.d.comb += [self.x.ready.eq(running & space), self.layout.ready.eq(~running)]
        with m.If(self.layout.valid & self.layout.ready):
            m.d.sync += [regs.eq(self.layout.payload), running.eq(1), y.eq(0), x.eq(0),
                         tile.eq(0), pos.eq(0), neg.eq(self.layout.payload.neg)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            value = self.x.payload
            half = (1 << regs.shift) >> 1
            out = self.o.payload
            for part, magnitude, slot in (("pos", Mux(value > 0, value, 0), pos),
                                          ("neg", Mux(value < 0, -value, 0), neg)):
                code = (magnitude + half) >> regs.shift
                m.d.sync += [out[part].eq(Mux(code > SLM_FULL, SLM_FULL, code)),
                             out[f"{part}_frame"].eq(slot.frame),
                             out[f"{part}_row"].eq(slot.row + regs.top + y),
                             out[f"{part}_col"].eq(slot.col + regs.left + x)]
            m.d.sync += [self.o.valid.eq(1), x.eq(x + 1)]
            with m.If(x + 1 == regs.cols):
                m.d.sync += [x.eq(0), y.eq(y + 1)]
                with m.If(y + 1 == regs.rows):
                    m.d.sync += [y.eq(0), tile.eq(tile + 1)]
                    for slot in (pos, neg):
                        self._next_slot(m, slot, regs)
                    with m.If(tile + 1 == regs.tiles):
                        m.d.sync += running.eq(0)
        return m

    @staticmethod
    def _next_slot(m: Module, slot, regs):
        """Move ``slot`` to the next grid position: along the row, then down, then to the
        next frame."""
        with m.If(slot.slot + 1 == regs.per_frame):
            m.d.sync += [slot.frame.eq(slot.frame + 1), slot.slot.eq(0), slot.grid_col.eq(0),
                         slot.row.eq(0), slot.col.eq(0)]
        with m.Elif(slot.grid_col + 1 == regs.grid_cols):
            m.d.sync += [slot.slot.eq(slot.slot + 1), slot.grid_col.eq(0),
                         slot.row.eq(slot.row + regs.tile_rows), slot.col.eq(0)]
        with m.Else():
            m.d.sync += [slot.slot.eq(slot.slot + 1), slot.grid_col.eq(slot.grid_col + 1),
                         slot.col.eq(slot.col + regs.tile_cols)]
