"""The SLM side of the optical I/O unit: ACT values to SLM amplitude codes and the pixels
they go to (`pyref.optical_io.pack`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from pyref.formats import ACT, SLM_PIXEL
from pyref.optical_io import COORD_BITS, COUNT_BITS, FRAME_BITS, SHIFT_BITS, SLM_FULL

#: Where a part's next tile goes: its frame, the slots left in that frame and the grid
#: columns left in its row after it, and its top-left pixel. Counting avoids every multiply
#: and divide, and counting down makes each end test a compare with zero.
SLOT = data.StructLayout({"frame": FRAME_BITS, "slots_left": COUNT_BITS,
                          "cols_left": COORD_BITS, "row": COORD_BITS, "col": COORD_BITS})

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
    """Splits each value into positive and negative SLM codes, one value per cycle, in
    two stages.

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
        x_left, y_left, tiles_left = Signal(COORD_BITS), Signal(COORD_BITS), Signal(COUNT_BITS)
        pos, neg = Signal(SLOT), Signal(SLOT)

        # Stage 1 splits the value and places its parts; stage 2 (the output register)
        # rounds and clamps the codes. Each stage's work alone fits a 100 MHz cycle.
        valid1 = Signal()
        placed = Signal(PIXELS)
        magnitudes = {part: Signal(ACT.bits, name=f"{part}_magnitude") for part in ("pos", "neg")}
        shift1 = Signal(SHIFT_BITS)

        advance = ~self.o.valid | self.o.ready
        take = running & self.x.valid & advance
        m.d.comb += [self.x.ready.eq(running & advance), self.layout.ready.eq(~running)]
        with m.If(self.layout.valid & self.layout.ready):
            layout = self.layout.payload
            m.d.sync += [regs.eq(layout), running.eq(1), y.eq(0), x.eq(0),
                         x_left.eq(layout.cols - 1), y_left.eq(layout.rows - 1),
                         tiles_left.eq(layout.tiles - 1), neg.eq(layout.neg),
                         pos.eq(0), pos.slots_left.eq(layout.per_frame - 1),
                         pos.cols_left.eq(layout.grid_cols - 1)]

        with m.If(advance):
            m.d.sync += [valid1.eq(take), self.o.valid.eq(valid1), self.o.payload.eq(placed)]
            half = (1 << shift1) >> 1
            for part, magnitude in magnitudes.items():
                code = (magnitude + half) >> shift1
                m.d.sync += self.o.payload[part].eq(Mux(code > SLM_FULL, SLM_FULL, code))
        with m.If(take):
            value = self.x.payload
            m.d.sync += [magnitudes["pos"].eq(Mux(value > 0, value, 0)),
                         magnitudes["neg"].eq(Mux(value < 0, -value, 0)), shift1.eq(regs.shift)]
            for part, slot in (("pos", pos), ("neg", neg)):
                m.d.sync += [placed[f"{part}_frame"].eq(slot.frame),
                             placed[f"{part}_row"].eq(slot.row + regs.top + y),
                             placed[f"{part}_col"].eq(slot.col + regs.left + x)]
            m.d.sync += [x.eq(x + 1), x_left.eq(x_left - 1)]
            with m.If(x_left == 0):
                m.d.sync += [x.eq(0), x_left.eq(regs.cols - 1), y.eq(y + 1),
                             y_left.eq(y_left - 1)]
                with m.If(y_left == 0):
                    m.d.sync += [y.eq(0), y_left.eq(regs.rows - 1),
                                 tiles_left.eq(tiles_left - 1)]
                    for slot in (pos, neg):
                        self._next_slot(m, slot, regs)
                    with m.If(tiles_left == 0):
                        m.d.sync += running.eq(0)
        return m

    @staticmethod
    def _next_slot(m: Module, slot, regs):
        """Move ``slot`` to the next grid position: along the row, then down, then to the
        next frame."""
        with m.If(slot.slots_left == 0):
            m.d.sync += [slot.frame.eq(slot.frame + 1), slot.slots_left.eq(regs.per_frame - 1),
                         slot.cols_left.eq(regs.grid_cols - 1), slot.row.eq(0), slot.col.eq(0)]
        with m.Elif(slot.cols_left == 0):
            m.d.sync += [slot.slots_left.eq(slot.slots_left - 1),
                         slot.cols_left.eq(regs.grid_cols - 1),
                         slot.row.eq(slot.row + regs.tile_rows), slot.col.eq(0)]
        with m.Else():
            m.d.sync += [slot.slots_left.eq(slot.slots_left - 1),
                         slot.cols_left.eq(slot.cols_left - 1),
                         slot.col.eq(slot.col + regs.tile_cols)]
