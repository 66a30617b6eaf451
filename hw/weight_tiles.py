"""Double-buffered weight tile: the next tile loads while the current one computes."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import delayed, kept_copies
from hw.mac_array import tile_layout
from pyref.formats import WEIGHT


class WeightTiles(wiring.Component):
    """Two weight tiles in registers: ``tile``, in use, and the next, filled row by row.

    A user claims the next tile once it is complete (``ready``); ``delay`` cycles later it
    becomes ``tile``. The delay lets a pipeline finish the vectors it already took with the
    old tile. The tile after it starts to load at once: rows that arrive before the change
    wait in a few registers of their own (at most ``delay - 1``) and join the others then,
    so a new tile can be claimed every ``rows + 1`` cycles for any delay up to ``rows``.

    Parameters
    ----------
    rows, cols : int
        Tile size: ``rows`` outputs by ``cols`` inputs.
    delay : int
        Cycles from ``claim`` to the change of ``tile``.

    Members
    -------
    w : In(stream.Signature(ArrayLayout(WEIGHT, cols)))
        Tile rows, row 0 first.
    ready : Out(1)
        The next tile is complete and not yet claimed.
    claim : In(1)
        Take the next tile (only while ``ready``).
    tile : Out(tile_layout(rows, cols))
    """

    def __init__(self, rows: int, cols: int, delay: int = 0):
        self.rows, self.cols, self.delay = rows, cols, delay
        super().__init__({
            "w": In(stream.Signature(data.ArrayLayout(WEIGHT.shape(), cols))),
            "ready": Out(1),
            "claim": In(1),
            "tile": Out(tile_layout(self.rows, self.cols)),
        })

    def elaborate(self, platform):
        m = Module()
        following = Signal(tile_layout(self.rows, self.cols))
        # Rows of the tile after next that arrive between the claim and the change.
        early_rows = max(0, min(self.delay - 1, self.rows - 1))
        early = [Signal.like(following[0], name=f"early{k}", reset_less=True)
                 for k in range(early_rows)]
        row = Signal(range(self.rows))
        full, claimed = Signal(), Signal()
        # Each row of the tile changes on its own copy of the take, and the next tile's
        # registers follow another: one enable net to every weight register crowded the
        # routing around the multipliers.
        if self.delay:
            *takes, take = kept_copies(m, delayed(m, self.claim, self.delay - 1, "take"),
                                       self.rows + 1, "take")
        else:
            *takes, take = [self.claim] * (self.rows + 1)

        # A row may arrive in the very cycle of the change (the change reads the old
        # rows), or while the change is pending, into `early`.
        pending = claimed & ~take
        m.d.comb += [self.w.ready.eq(~full | take | (pending & (row < early_rows))),
                     self.ready.eq(full & ~claimed)]
        with m.If(self.claim):
            m.d.sync += claimed.eq(1)
        with m.If(take):
            m.d.sync += [full.eq(0), claimed.eq(0)]
        for row_take, tile_row, following_row in zip(takes, self.tile, following, strict=True):
            with m.If(row_take):
                m.d.sync += tile_row.eq(following_row)
        # The register for row `row` takes the payload in every cycle it may (it holds no
        # row yet, or the change reads it now), valid or not: the row counter moves on only
        # when a row comes, so the register keeps that one. Their enables are then
        # registers' (row, full, pending), not the stream's handshake.
        with m.If(pending):
            for k, early_row in enumerate(early):
                with m.If(row == k):
                    m.d.sync += early_row.eq(self.w.payload)
        with m.Elif(~full | take):
            for k, following_row in enumerate(following):
                with m.If(row == k):
                    m.d.sync += following_row.eq(self.w.payload)
        with m.If(take):
            for k, early_row in enumerate(early):
                with m.If(k < row):
                    m.d.sync += following[k].eq(early_row)
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(row == self.rows - 1):
                m.d.sync += [full.eq(1), row.eq(0)]
        return m
