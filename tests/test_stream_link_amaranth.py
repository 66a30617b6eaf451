"""The stream link in Amaranth's simulator: every beat, in order, a beat a cycle unstalled."""

import random

import pytest
from amaranth.sim import Simulator

from hw.stream_link import StreamLink
from tests.amaranth_streams import assert_refused, run_stream


@pytest.mark.parametrize("stages, depth", [(1, None), (3, None), (1, 3)])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_beats_arrive_in_order(stages, depth, stall):
    rng = random.Random(stages)
    payloads = [rng.randrange(1 << 12) for _ in range(200)]
    got = run_stream(StreamLink(12, stages, depth), payloads, len(payloads), rng, stall)
    assert got == payloads


@pytest.mark.parametrize("stages", [1, 2, 4])
def test_a_beat_a_cycle_and_pending_until_taken(stages):
    dut = StreamLink(8, stages)
    beats = 64
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        sent, got, cycles = 0, [], 0
        while len(got) < beats:
            ctx.set(dut.i.valid, sent < beats)
            ctx.set(dut.i.payload, sent)
            *_, ready, valid, payload, pending = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload, dut.pending)
            sent += bool(ready and sent < beats)
            if valid:
                got.append(payload)
            seen.append(pending)
            cycles += 1
        for _ in range(stages + 2):
            *_, pending = await ctx.tick().sample(dut.pending)
            seen.append(pending)
        assert got == list(range(beats))
        # The first beat takes `stages` cycles to arrive, then one a cycle.
        assert cycles <= beats + stages + 3

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen[0] == 0 and any(seen) and not seen[-1]


def test_a_queue_too_small_is_refused():
    assert_refused(lambda: StreamLink(8, depth=2), "3 beats or more, got 2")
