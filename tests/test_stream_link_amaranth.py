"""The stream link in Amaranth's simulator: every payload, in order, a beat a cycle
unstalled, whole or in several beats."""

import random

import pytest
from amaranth.sim import Simulator

from hw.stream_link import StreamLink
from tests.amaranth_streams import assert_refused, count_through, run_stream


@pytest.mark.parametrize("stages, depth, beats", [(1, None, 1), (3, None, 1), (1, 3, 1),
                                                  (1, None, 3), (2, 3, 4)])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_payloads_arrive_in_order(stages, depth, beats, stall):
    rng = random.Random(stages)
    payloads = [rng.randrange(1 << 13) for _ in range(200)]
    got = run_stream(StreamLink(13, stages, depth, beats), payloads, len(payloads), rng,
                     stall, cycles_per_item=20 * beats)
    assert got == payloads


@pytest.mark.parametrize("stages, beats", [(1, 1), (2, 1), (4, 1), (1, 4), (3, 2)])
def test_a_beat_a_cycle_and_pending_until_taken(stages, beats):
    dut = StreamLink(8, stages, beats=beats)
    payloads = 64
    seen = []

    async def bench(ctx):
        got, cycles = await count_through(ctx, dut, payloads,
                                          lambda ctx: seen.append(ctx.get(dut.pending)))
        for _ in range(stages + 2):
            *_, pending = await ctx.tick().sample(dut.pending)
            seen.append(pending)
        assert got == list(range(payloads))
        # The first payload takes `stages` cycles and its beats to arrive (and the
        # Deserialiser's register when it is cut into beats), then one comes every `beats`
        # cycles, or every `beats` + 1 when cut (the Deserialiser takes a payload's first
        # beat the cycle after its predecessor leaves).
        cut = beats > 1
        assert cycles <= payloads * (beats + cut) + stages + 3 + cut

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen[0] == 0 and any(seen) and not seen[-1]


def test_a_queue_too_small_is_refused():
    assert_refused(lambda: StreamLink(8, depth=2), "3 beats or more, got 2")


def test_no_beats_is_refused():
    assert_refused(lambda: StreamLink(8, beats=0), "1 beat or more, not 0")


@pytest.mark.parametrize("beats", [2, 4])
def test_pending_while_a_payload_waits_at_the_far_end(beats):
    """A payload whose beats have all left the queue but which the far end has not taken
    still counts as pending (a port's busy flag relies on it)."""
    dut = StreamLink(16, beats=beats)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.payload, 0xBEEF)
        ctx.set(dut.i.valid, 1)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        for _ in range(4 * beats + 10):  # long past the gathering of its beats
            *_, pending, valid = await ctx.tick().sample(dut.pending, dut.o.valid)
            seen.append((pending, valid))
        assert seen[-1] == (1, 1)
        ctx.set(dut.o.ready, 1)
        *_, payload = await ctx.tick().sample(dut.o.payload)
        assert payload == 0xBEEF
        ctx.set(dut.o.ready, 0)
        for _ in range(4):
            *_, pending = await ctx.tick().sample(dut.pending)
        assert not pending

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(pending for pending, _ in seen)
