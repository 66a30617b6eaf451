"""`ColumnMemory` in Amaranth's simulator: the same reads as one `Memory`, transparency too."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from hw.column_memory import DP16KD_GEOMETRIES, ColumnMemory, column_bits


@pytest.mark.parametrize("depth", [100, 512, 600, 3000, 12384, 16384])
def test_columns_are_the_widest_that_one_block_ram_holds_at_the_depth(depth):
    bits = column_bits(depth)
    geometry = [g for g in DP16KD_GEOMETRIES if g[1] == bits][0]
    assert depth <= geometry[0]
    wider = DP16KD_GEOMETRIES.index(geometry) - 1
    assert wider < 0 or depth > DP16KD_GEOMETRIES[wider][0]


def test_a_memory_deeper_than_a_block_ram_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="split it by address"):
        column_bits(20_000)


# With copies of the ports' controls, the columns act a cycle later: the single memory is
# then driven with the previous cycle's inputs.
@pytest.mark.parametrize("columns_per_copy", [None, 2])
@pytest.mark.parametrize("transparent", [False, True])
def test_reads_match_a_single_memory(transparent, columns_per_copy):
    layout = data.ArrayLayout(13, 3)  # 39 bits: columns of 9 and a narrower last one
    depth = 1500
    m = Module()
    m.submodules.cut = cut = ColumnMemory(shape=layout, depth=depth,
                                          columns_per_copy=columns_per_copy)
    m.submodules.whole = whole = Memory(shape=layout, depth=depth, init=[])
    ports = []
    for memory in (cut, whole):
        write = memory.write_port()
        read = memory.read_port(transparent_for=(write,) if transparent else ())
        ports.append((write, read))
    rng = random.Random(1)

    async def bench(ctx):
        previous = (0, 0, 0, 0)
        for _ in range(400):
            addr, value = rng.randrange(depth), rng.getrandbits(39)
            read_addr = addr if rng.random() < 0.3 else rng.randrange(depth)
            enable = rng.random() < 0.7
            now = (enable, addr, value, read_addr)
            for (write, read), inputs in zip(ports, (now, now if columns_per_copy is None
                                                     else previous), strict=True):
                ctx.set(write.en, inputs[0])
                ctx.set(write.addr, inputs[1])
                ctx.set(write.data.as_value(), inputs[2])
                ctx.set(read.addr, inputs[3])
            previous = now
            await ctx.tick()
            got, want = (ctx.get(read.data.as_value()) for _, read in ports)
            assert got == want

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
