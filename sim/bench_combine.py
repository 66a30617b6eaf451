"""cocotb bench: the expert combine (the MoE scatter) against `pyref.intmodel.combine` on the
``combine`` set: each config's used experts, their queues and their outputs."""

import cocotb

from pyref import vectors
from pyref.config import get_config, get_hw_config
from sim.streams import StreamTB


class TB(StreamTB):
    """Combine bench: per config, every used expert's queue then its outputs."""

    def layer(self, name: str) -> dict:
        v = vectors.load("combine", self.vector_dir, self.seed)
        lanes = get_hw_config(self.info["hw"]).tile_out
        schedule, y, out = (v[f"{name}.{k}"] for k in ("schedule", "y", "out"))
        dim = get_config(name).dim
        queue, beats = [], []
        for expert in dict.fromkeys(schedule[:, 0].tolist()):
            rows = (schedule[:, 0] == expert).nonzero()[0]
            queue += [{"token": int(schedule[r, 1]), "score": int(schedule[r, 2]),
                       "last": int(r == rows[-1]), "final": int(r == len(schedule) - 1)}
                      for r in rows]
            beats += [y[r, c:c + lanes].tolist() for c in range(0, dim, lanes) for r in rows]
        expected = [row[c:c + lanes].tolist() for row in out for c in range(0, dim, lanes)]
        cmd = {"tokens": len(out), "chunks": dim // lanes}
        return {"inputs": {"cmd": [cmd], "queue": queue, "y": beats}, "expected": expected,
                "ideal_cycles": len(queue) + len(beats) + len(expected)}


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def layers(dut, stalls):
    tb = TB(dut, stalls)
    jobs = [tb.layer(name) for name in tb.info["configs"]]
    # A queue entry, an output beat, a row chunk out: one per cycle each, in turn.
    result = await tb.run_jobs(jobs)
    lanes = get_hw_config(tb.info["hw"]).tile_out
    tb.record("layers", {**result, "macs": sum(len(j["inputs"]["y"]) for j in jobs) * lanes,
                         "peak_macs_per_cycle": lanes})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
