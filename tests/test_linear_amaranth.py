"""The linear unit's pure-Amaranth parts in Amaranth's simulator: the MAC tile and the
double-buffered weight tiles. The whole unit, with its XLS requantisers, runs bit-exact in
Verilator (tests/test_sim.py, sim/bench_linear.py)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.mac_array import MacArray
from hw.weight_tiles import WeightTiles
from pyref import ops
from pyref.formats import ACT, WEIGHT
from tests.amaranth_streams import send


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 5), (4, 8)])
def test_mac_array_uses_the_tile_of_the_cycle_after_each_vector(rows, cols):
    rng = np.random.default_rng(rows * cols)
    count = 40
    xs = ACT.random(rng, (count, cols))
    tiles = WEIGHT.random(rng, (count, rows, cols))
    xs[0], tiles[0] = ACT.min_code, WEIGHT.min_code  # the largest product
    dut = MacArray(rows, cols)
    got = []

    async def drive(ctx):
        # Vector k enters in one cycle and its tile is there in the next; gaps at random.
        gaps = random.Random(cols)
        for k in range(count):
            while gaps.random() < 0.3:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, xs[k].tolist())
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            ctx.set(dut.tile, tiles[k].tolist())

    async def watch(ctx):
        while len(got) < count:
            *_, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append([int(v) for v in payload])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive)
    sim.add_testbench(watch)
    sim.run_until(1e-8 * 4 * count)
    assert got == [[int(ops.dot(x, row)) for row in tile] for x, tile in zip(xs, tiles,
                                                                              strict=True)]


def rows_of(tile) -> list:
    return [[int(w) for w in row] for row in tile]


@pytest.mark.parametrize("delay", [0, 1, 3])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_weight_tiles_change_delay_cycles_after_each_claim(delay, stall):
    rows, cols, count = 3, 2, 12
    rng = np.random.default_rng(delay)
    tiles = WEIGHT.random(rng, (count, rows, cols))
    dut = WeightTiles(rows, cols, delay)
    seen = []

    async def load(ctx):
        await send(ctx, dut.w, [row.tolist() for tile in tiles for row in tile],
                   random.Random(delay), idle=stall)

    async def claim(ctx):
        waits = random.Random(delay + 1)
        while len(seen) < count:
            await ctx.tick().until(dut.ready)
            while waits.random() < stall:
                await ctx.tick()
            assert ctx.get(dut.ready)  # nothing takes a complete tile away but a claim
            ctx.set(dut.claim, 1)
            await ctx.tick()
            ctx.set(dut.claim, 0)
            # The old tile stays for `delay` cycles, then the claimed one is in place.
            for _ in range(delay):
                if seen:
                    assert rows_of(ctx.get(dut.tile)) == seen[-1]
                await ctx.tick()
            seen.append(rows_of(ctx.get(dut.tile)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(load)
    sim.add_testbench(claim)
    sim.run_until(1e-8 * 20 * count * rows)
    assert seen == tiles.tolist()
