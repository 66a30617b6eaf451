"""`hw.delay.wrapping_count` in Amaranth's simulator against a plain count: its value and
its first and last flags, with and without the late count, over random restarts and steps."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.delay import wrapping_count


@pytest.mark.parametrize("late", [False, True])
def test_wrapping_count_follows_a_plain_count(late):
    rng = random.Random(int(late))
    m = Module()
    start, step, limit = Signal(), Signal(), Signal(range(9))
    counter, at_first, at_last = wrapping_count(m, range(8), start, limit, step, "n", late)

    async def bench(ctx):
        count, length, last_step = 0, 1, -2
        ctx.set(limit, 1)
        ctx.set(start, 1)
        await ctx.tick()
        for cycle in range(2000):
            # A late count needs its steps two cycles apart; a restart comes between jobs.
            stepping = rng.random() < 0.6 and (not late or cycle - last_step >= 2)
            restarting = not stepping and rng.random() < 0.05
            new_length = rng.randrange(1, 9)
            ctx.set(start, restarting)
            ctx.set(limit, new_length)
            ctx.set(step, stepping)
            assert (ctx.get(at_first), ctx.get(at_last)) == (count == 0, count == length - 1)
            if not late or cycle - last_step >= 2:
                assert ctx.get(counter) == count
            await ctx.tick()
            if restarting:
                count, length = 0, new_length
            elif stepping:
                count, last_step = (count + 1) % length, cycle

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
