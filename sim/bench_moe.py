"""cocotb bench: the MoE unit against `pyref.intmodel.route_logits` on the ``moe`` set.

Each config's router logits go in as one layer; the queue entries must match pyref's patch
reordering, and the weights that come out of the memory port must be exactly the words of
the experts that were chosen, in order, so an unused expert costs no traffic.
"""

import cocotb
import numpy as np

from pyref import vectors
from pyref.config import get_config
from sim.streams import StreamTB

#: Where the experts' weights start in the memory's word address space.
WEIGHTS_BASE = 1 << 20


class TB(StreamTB):
    """MoE bench: a layer per config, its entries and its expected weight words."""

    def layer(self, name: str) -> dict:
        config = get_config(name)
        v = vectors.load("moe", self.vector_dir, self.seed)
        logits, schedule = v[f"{name}.logits"], v[f"{name}.schedule"]
        port_bytes = self.info["port_width"] // 8
        words = -(-config.expert_bytes // port_bytes)
        experts = schedule[:, 0]
        changes = np.flatnonzero(np.diff(experts)) + 1
        first = np.isin(np.arange(len(schedule)), np.append(0, changes))
        last = np.isin(np.arange(len(schedule)), np.append(changes - 1, len(schedule) - 1))
        entries = [{"expert": int(e), "token": int(t), "score": int(s), "first": int(f),
                    "last": int(la), "final": int(i == len(schedule) - 1)}
                   for i, ((e, t, s), f, la) in enumerate(zip(schedule, first, last,
                                                              strict=True))]
        used = [int(e) for e in experts[first]]
        depth = self.info["memory_depth"]
        weights = [(WEIGHTS_BASE + e * words + w) % depth for e in used for w in range(words)]
        cmd = {"tokens": len(logits), "experts": config.experts, "expert_words": words,
               "weights": WEIGHTS_BASE}
        bytes_per_expert = [words * port_bytes * (e in used) for e in range(config.experts)]
        return {"inputs": {"cmd": [cmd], "logits": logits.ravel().tolist()},
                "expected": {"o": entries, "weights": weights},
                "bytes_per_expert": bytes_per_expert, "used": used,
                # A logit per `interval` cycles, then the used experts' weights at a word
                # per cycle.
                "ideal_cycles": self.info["interval"] * logits.size + len(weights)}


@cocotb.test()
async def layers(dut):
    """Each config's layer alone, no stalls: entries, weights and the bytes moved."""
    tb = TB(dut, stalls=False)
    total = {"vectors": 0, "mismatches": 0, "cycles": 0}
    breakdown = {}
    for name in tb.info["configs"]:
        job = tb.layer(name)
        result = await tb.run(job["inputs"], job["expected"])
        read_bytes = int(dut.read_bytes.value)
        breakdown[name] = {"cycles": result["cycles"], "ideal_cycles": job["ideal_cycles"],
                           "experts_used": len(job["used"]),
                           "read_bytes": read_bytes,
                           "bytes_per_expert": job["bytes_per_expert"],
                           "unused_expert_bytes": sum(b for e, b in enumerate(
                               job["bytes_per_expert"]) if e not in job["used"])}
        result["mismatches"] += read_bytes != sum(job["bytes_per_expert"])
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
