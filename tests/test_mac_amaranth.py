"""MacUnit in Amaranth's simulator against pyref.ops.dot, with and without stalls."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.mac import MacUnit
from pyref import ops
from pyref.formats import ACT, WEIGHT
from sim.bench_mac import beats
from tests.amaranth_streams import receive, send


@pytest.mark.parametrize("lanes", [1, 3, 4])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_mac_matches_pyref(lanes, stall):
    rng = np.random.default_rng(lanes)
    vectors = [(ACT.random(rng, n), WEIGHT.random(rng, n)) for n in rng.integers(1, 20, size=30)]
    vectors.append((np.full(9, ACT.min_code), np.full(9, WEIGHT.min_code)))
    expected = [int(ops.dot(a, w)) for a, w in vectors]
    payloads = [b for a, w in vectors for b in beats(a, w, lanes)]

    dut = MacUnit(lanes)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    stalls = random.Random(lanes)
    got = []

    async def driver(ctx):
        await send(ctx, dut.i, payloads, stalls, idle=stall)

    async def monitor(ctx):
        got.extend(await receive(ctx, dut.o, len(expected), stalls, stall=stall))

    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run_until(1e-8 * 20 * (len(payloads) + 10))
    assert [int(x) for x in got] == expected
