"""cocotb bench: the MAC unit against `pyref.ops.dot` on the ``mac`` vector set."""

import cocotb
import numpy as np

from pyref import vectors
from sim.streams import StreamTB


def beats(act, weight, lanes: int) -> list[dict]:
    """One vector as input beats of ``lanes`` pairs, zero-padded, ``last`` on the final one."""
    n = -(-len(act) // lanes) * lanes
    a = np.zeros(n, dtype=np.int64)
    w = np.zeros(n, dtype=np.int64)
    a[: len(act)], w[: len(weight)] = act, weight
    return [{"act": a[k:k + lanes].tolist(), "weight": w[k:k + lanes].tolist(),
             "last": int(k + lanes == n)} for k in range(0, n, lanes)]


class TB(StreamTB):
    """MAC bench: vectors become beats; each vector's dot product is one expected result."""

    def stimulus(self):
        v = vectors.load("mac", self.vector_dir, self.seed)
        lanes = self.info["lanes"]
        inputs = [b for span in vectors.segments(v["lengths"])
                  for b in beats(v["act"][span], v["weight"][span], lanes)]
        return inputs, [int(x) for x in v["acc"]], int(v["lengths"].sum())


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def dot_products(dut, stalls):
    tb = TB(dut, stalls)
    inputs, expected, macs = tb.stimulus()
    result = await tb.run(inputs, expected)
    # One beat per cycle, then the pipeline's latency for the last vector.
    tb.record("dot_products", {**result, "macs": macs,
                               "ideal_cycles": len(inputs) + tb.info["latency"],
                               "peak_macs_per_cycle": tb.info["lanes"]})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
