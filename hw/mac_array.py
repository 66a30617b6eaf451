"""A tile of multipliers: one activation vector against every row of a weight tile."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import registered_sum
from hw.delay import delayed
from pyref.formats import ACC, ACT, WEIGHT


def tile_layout(rows: int, cols: int) -> data.ArrayLayout:
    """A weight tile: ``rows`` rows (outputs) of ``cols`` weights (inputs)."""
    return data.ArrayLayout(data.ArrayLayout(WEIGHT.shape(), cols), rows)


class MacArray(wiring.Component):
    """Dot products of an activation vector with each row of ``tile``, every cycle.

    A lock-step pipeline (`hw.xls_pipe.lockstep`). Both operands of every multiplier come
    from a register of its own (each row keeps a copy of the vector, so no register drives
    more than one multiplier and each can move into its MULT18X18D), the products are
    registered, then each row's sum goes through `registered_sum`. ``tile`` is read in the
    cycle after a vector enters, so its owner may change it between vectors.

    Parameters
    ----------
    rows, cols : int
        Outputs and inputs of the tile: ``rows * cols`` multipliers.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(ACT, cols), always_ready=True))
    tile : In(tile_layout(rows, cols))
    o : Out(stream.Signature(ArrayLayout(ACC, rows), always_ready=True))
    """

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols
        self.latency = 3 + (cols - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(ACT.shape(), cols), always_ready=True)),
            "tile": In(tile_layout(rows, cols)),
            "o": Out(stream.Signature(data.ArrayLayout(ACC.shape(), rows), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        # The vector waits a cycle in a register while the tile's owner switches tiles.
        x = delayed(m, self.i.payload, 1, "x")
        tile = Signal.like(self.tile, reset_less=True)
        m.d.sync += tile.eq(self.tile)
        for r in range(self.rows):
            row_x = Signal.like(x, name=f"x_row{r}", reset_less=True)
            m.d.sync += row_x.eq(x)
            products = [Signal(signed(ACT.bits + WEIGHT.bits), name=f"product{r}_{k}",
                               reset_less=True) for k in range(self.cols)]
            m.d.sync += [p.eq(row_x[k] * tile[r][k]) for k, p in enumerate(products)]
            total, _ = registered_sum(m, products, f"sum{r}_")
            m.d.comb += self.o.payload[r].eq(total)
        m.d.comb += self.o.valid.eq(delayed(m, self.i.valid, self.latency, "valid"))
        return m
