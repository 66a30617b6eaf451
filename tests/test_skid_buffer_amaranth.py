"""The skid buffer in Amaranth's simulator: every payload in order under random stalls, a
payload a cycle unstalled, and its input's ready a register."""

import random

import pytest
from amaranth.sim import Simulator

from hw.skid_buffer import SkidBuffer
from tests.amaranth_streams import count_through, run_stream


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_payloads_arrive_in_order(stall):
    rng = random.Random(int(stall * 10))
    payloads = [rng.randrange(1 << 12) for _ in range(300)]
    assert run_stream(SkidBuffer(12), payloads, len(payloads), rng, stall) == payloads


def test_a_payload_a_cycle_and_ready_from_a_register():
    dut = SkidBuffer(8)
    count = 40

    def ready_is_a_register(ctx):
        # The taker's ready, lowered now, changes nothing on the input side this cycle.
        ctx.set(dut.o.ready, 0)
        ready_stalled = ctx.get(dut.i.ready)
        ctx.set(dut.o.ready, 1)
        assert ctx.get(dut.i.ready) == ready_stalled

    async def bench(ctx):
        got, cycles = await count_through(ctx, dut, count, ready_is_a_register)
        assert got == list(range(count))
        assert cycles == count + 1  # the first a cycle late, then one a cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
