"""Key steps in Amaranth's simulator: every head's rows in the attention unit's order."""

import random

import pytest
from amaranth.sim import Simulator

from hw.key_steps import KeySteps
from pyref import intmodel
from tests.amaranth_streams import receive, send


@pytest.mark.parametrize("parallelism", [1, 2, 4])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_each_step_reads_key_s_mod_tokens(parallelism, stall):
    heads = [1, 2, 3, 17, 5]
    dut = KeySteps(parallelism, 20)
    rng = random.Random(parallelism)
    expected = []
    for t in heads:
        steps = len(intmodel.attention_schedule(t, parallelism))
        expected += [{"token": s % t, "final": int(s == steps - 1)} for s in range(steps)]
    got = []

    async def commands(ctx):
        await send(ctx, dut.cmd, [{"tokens": t} for t in heads], rng, idle=stall)

    async def steps(ctx):
        got.extend(await receive(ctx, dut.o, len(expected), rng, stall))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(commands)
    sim.add_testbench(steps)
    sim.run_until(1e-8 * 40 * len(expected))
    assert [{"token": g.token, "final": g.final} for g in got] == expected
