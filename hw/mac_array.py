"""A tile of multipliers: one activation vector against every row of a weight tile."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import delayed
from pyref.formats import ACC, ACT, WEIGHT


def tile_layout(rows: int, cols: int) -> data.ArrayLayout:
    """A weight tile: ``rows`` rows (outputs) of ``cols`` weights (inputs)."""
    return data.ArrayLayout(data.ArrayLayout(WEIGHT.shape(), cols), rows)


def registered_sum(m: Module, terms: list, name: str) -> tuple:
    """Add ``terms`` in a tree with a register after each level, so each stage holds one
    carry chain. Returns the `ACC` sum and the levels (its latency)."""
    levels = 0
    while len(terms) > 1:
        pairs = [terms[k:k + 2] for k in range(0, len(terms), 2)]
        sums = [Signal(ACC.shape(), name=f"{name}{levels}_{k}", reset_less=True)
                for k in range(len(pairs))]
        m.d.sync += [total.eq(sum(pair)) for total, pair in zip(sums, pairs, strict=True)]
        terms, levels = sums, levels + 1
    return terms[0], levels


class MacArray(wiring.Component):
    """Dot products of an activation vector with each row of ``tile``, every cycle.

    A lock-step pipeline (`hw.xls_pipe.lockstep`): the products are registered (as the ECP5
    multipliers want), then each row's sum goes through `registered_sum`. ``tile`` is read
    in the cycle after a vector enters, so its owner may change it between vectors.

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
        self.latency = 2 + (cols - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(ACT.shape(), cols), always_ready=True)),
            "tile": In(tile_layout(rows, cols)),
            "o": Out(stream.Signature(data.ArrayLayout(ACC.shape(), rows), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        # The vector waits a cycle in a register, the tile's owner switches tiles meanwhile.
        x = delayed(m, self.i.payload, 1, "x")
        for r in range(self.rows):
            products = [Signal(signed(ACT.bits + WEIGHT.bits), name=f"product{r}_{k}",
                               reset_less=True) for k in range(self.cols)]
            m.d.sync += [p.eq(x[k] * self.tile[r][k]) for k, p in enumerate(products)]
            total, _ = registered_sum(m, products, f"sum{r}_")
            m.d.comb += self.o.payload[r].eq(total)
        m.d.comb += self.o.valid.eq(delayed(m, self.i.valid, self.latency, "valid"))
        return m
