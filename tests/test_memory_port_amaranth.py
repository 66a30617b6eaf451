"""The memory port in Amaranth's simulator: data, order, the bandwidth limit and the byte
counters, with random stalls on every stream."""

import random
from fractions import Fraction

import pytest
from amaranth.sim import Simulator

from hw.memory_port import MemoryPort
from tests.amaranth_streams import receive, send

WIDTH, DEPTH = 32, 64


def simulate(rate, stall: float, reads, writes, seed=0):
    """Run read and write bursts; returns the words read, the final memory, the counters and
    the cycles from the first request to the last word."""
    image = [random.Random(seed).getrandbits(WIDTH) for _ in range(DEPTH)]
    dut = MemoryPort(WIDTH, DEPTH, rate, image)
    rng = random.Random(seed + 1)
    got, finished = [], []

    async def requests(ctx):
        await send(ctx, dut.write_req, [{"addr": a, "beats": len(d)} for a, d in writes], rng,
                   idle=stall)
        await send(ctx, dut.read_req, [{"addr": a, "beats": n} for a, n in reads], rng,
                   idle=stall)

    async def write_data(ctx):
        await send(ctx, dut.write_data, [w for _, d in writes for w in d], rng, idle=stall)

    async def read_data(ctx):
        got.extend(await receive(ctx, dut.read_data, sum(n for _, n in reads), rng, stall))
        finished.append(ctx.get(dut.read_bytes))
        finished.append(ctx.get(dut.write_bytes))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (requests, write_data, read_data):
        sim.add_testbench(bench)
    sim.run_until(1e-8 * 4000)
    memory = list(image)
    for addr, words in writes:
        memory[addr:addr + len(words)] = words
    return got, memory, finished


@pytest.mark.parametrize("rate", [Fraction(1), Fraction(1, 3), Fraction(2, 3)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_reads_see_writes_in_order_and_every_byte_is_counted(rate, stall):
    writes = [(3, [1, 2, 3, 4, 5]), (40, [7] * 9)]
    reads = [(0, 10), (38, 12), (63, 1)]
    got, memory, (read_bytes, write_bytes) = simulate(rate, stall, reads, writes)
    assert got == [w for a, n in reads for w in memory[a:a + n]]
    assert read_bytes == 4 * sum(n for _, n in reads)
    assert write_bytes == 4 * sum(len(d) for _, d in writes)


@pytest.mark.parametrize("rate", [Fraction(1), Fraction(1, 2), Fraction(1, 4)])
def test_reads_never_beat_the_rate(rate):
    dut = MemoryPort(WIDTH, DEPTH, rate, range(DEPTH))
    cycles = []

    async def bench(ctx):
        ctx.set(dut.read_data.ready, 1)
        await send(ctx, dut.read_req, [{"addr": 0, "beats": 40}], random.Random(0))
        words = 0
        for cycle in range(400):
            *_, valid = await ctx.tick().sample(dut.read_data.valid)
            if valid:
                words += 1
                if words == 40:
                    cycles.append(cycle)
                    return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(1e-8 * 500)
    # The first word is free (the credit starts full), then one per 1/rate cycles; the
    # request and the FIFO add a few cycles.
    assert 39 / rate <= cycles[0] <= 40 / rate + 4
