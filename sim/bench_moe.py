"""cocotb bench: the MoE unit against `pyref.intmodel.route_logits` on the ``moe`` set.

Each config's router logits go in as one layer; the queue entries, each with its expert's
queue length, must match pyref's patch reordering. Experts no token chose never appear.
"""

import cocotb
import numpy as np

from pyref import vectors
from pyref.config import get_config
from sim.streams import StreamTB


class TB(StreamTB):
    """MoE bench: a layer per config and its entries."""

    def layer(self, name: str) -> dict:
        config = get_config(name)
        v = vectors.load("moe", self.vector_dir, self.seed)
        logits, schedule = v[f"{name}.logits"], v[f"{name}.schedule"]
        experts = schedule[:, 0]
        changes = np.flatnonzero(np.diff(experts)) + 1
        first = np.isin(np.arange(len(schedule)), np.append(0, changes))
        last = np.isin(np.arange(len(schedule)), np.append(changes - 1, len(schedule) - 1))
        count = {int(e): int((experts == e).sum()) for e in experts}
        entries = [{"expert": int(e), "token": int(t), "score": int(s), "count": count[int(e)],
                    "first": int(f), "last": int(la), "final": int(i == len(schedule) - 1)}
                   for i, ((e, t, s), f, la) in enumerate(zip(schedule, first, last,
                                                              strict=True))]
        cmd = {"tokens": len(logits), "experts": config.experts}
        return {"inputs": {"cmd": [cmd], "logits": logits.ravel().tolist()},
                "expected": {"o": entries}, "used": [int(e) for e in experts[first]],
                # A logit per `interval` cycles, then an entry per cycle.
                "ideal_cycles": self.info["interval"] * logits.size + len(entries)}


@cocotb.test()
async def layers(dut):
    """Each config's layer alone, no stalls: its entries and the experts used."""
    tb = TB(dut, stalls=False)
    total = {"vectors": 0, "mismatches": 0, "cycles": 0}
    breakdown = {}
    for name in tb.info["configs"]:
        job = tb.layer(name)
        result = await tb.run(job["inputs"], job["expected"])
        breakdown[name] = {"cycles": result["cycles"], "ideal_cycles": job["ideal_cycles"],
                           "experts_used": job["used"]}
        for key in total:
            total[key] += result[key]
    ideal = sum(b["ideal_cycles"] for b in breakdown.values())
    tb.record("layers", {**total, "ideal_cycles": ideal, "macs": 0, "peak_macs_per_cycle": 0,
                         "breakdown": breakdown})
    assert total["mismatches"] == 0, f"{total['mismatches']} mismatches against pyref"


@cocotb.test()
async def layers_with_stalls(dut):
    """Both layers back to back, every stream stalling at random."""
    tb = TB(dut, stalls=True)
    result = await tb.run_jobs([tb.layer(name) for name in tb.info["configs"]])
    tb.record("layers", result)
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
