"""MacUnit in Amaranth's simulator against pyref.ops.dot, with and without stalls."""

import random

import numpy as np
import pytest

from hw.mac import MacUnit
from pyref import ops
from pyref.formats import ACT, WEIGHT
from sim.bench_mac import beats
from tests.amaranth_streams import run_stream


@pytest.mark.parametrize("lanes", [1, 3, 4])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_mac_matches_pyref(lanes, stall):
    rng = np.random.default_rng(lanes)
    vectors = [(ACT.random(rng, n), WEIGHT.random(rng, n)) for n in rng.integers(1, 20, size=30)]
    vectors.append((np.full(9, ACT.min_code), np.full(9, WEIGHT.min_code)))
    expected = [int(ops.dot(a, w)) for a, w in vectors]
    payloads = [b for a, w in vectors for b in beats(a, w, lanes)]

    got = run_stream(MacUnit(lanes), payloads, len(expected), random.Random(lanes), stall)
    assert [int(x) for x in got] == expected
