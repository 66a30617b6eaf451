"""cocotb bench: the MoE gather against `pyref.intmodel.gather` on the ``gather`` set: each
config's layer rows, then its queues."""

import cocotb

from pyref import vectors
from pyref.config import get_config, get_hw_config
from sim.streams import StreamTB


class TB(StreamTB):
    """Gather bench: per config, a command, the layer's rows, then every queue entry."""

    def layer(self, name: str) -> dict:
        v = vectors.load("gather", self.vector_dir, self.seed)
        lanes = get_hw_config(self.info["hw"]).tile_in
        x, schedule, rows = (v[f"{name}.{k}"] for k in ("x", "schedule", "rows"))
        chunks = range(0, get_config(name).dim, lanes)
        queue = [{"token": int(t), "final": int(r == len(schedule) - 1)}
                 for r, t in enumerate(schedule[:, 1])]
        beats = [row[c:c + lanes].tolist() for row in x for c in chunks]
        expected = [row[c:c + lanes].tolist() for row in rows for c in chunks]
        cmd = {"tokens": len(x), "chunks": len(chunks)}
        # The rows in, then a chunk out per cycle, then the read, its register and the
        # result FIFO.
        return {"inputs": {"cmd": [cmd], "i": beats, "queue": queue}, "expected": expected,
                "ideal_cycles": len(beats) + len(expected) + 3}


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def layers(dut, stalls):
    tb = TB(dut, stalls)
    result = await tb.run_jobs([tb.layer(name) for name in tb.info["configs"]])
    tb.record("layers", {**result, "macs": 0, "peak_macs_per_cycle": 0})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
