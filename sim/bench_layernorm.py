"""cocotb bench: the LayerNorm unit against `pyref.intmodel.layernorm` on the ``layernorm``
set: a layer of every config, each its gamma and beta, then its rows."""

import cocotb

from pyref import vectors
from pyref.config import get_hw_config
from sim.streams import StreamTB


class TB(StreamTB):
    """LayerNorm bench: per config, a command, the layer's gamma and beta, its rows."""

    def layer(self, name: str) -> dict:
        v = vectors.load("layernorm", self.vector_dir, self.seed)
        lanes = get_hw_config(self.info["hw"]).tile_in
        x, gamma, beta, y = (v[f"{name}.{k}"] for k in ("x", "gamma", "beta", "y"))
        tokens, dim = x.shape
        chunks = range(0, dim, lanes)
        params = [{"gamma": gamma[c:c + lanes].tolist(), "beta": beta[c:c + lanes].tolist()}
                  for c in chunks]
        rows = [row[c:c + lanes].tolist() for row in x for c in chunks]
        expected = [row[c:c + lanes].tolist() for row in y for c in chunks]
        cmd = {"tokens": tokens, "chunks": len(chunks), "eps": int(v[f"{name}.eps"])}
        # Gamma and beta, then a chunk per cycle, then the last row's latency and replay.
        ideal = len(params) + len(rows) + self.info["latency"] + len(chunks)
        return {"inputs": {"cmd": [cmd], "params": params, "i": rows}, "expected": expected,
                "ideal_cycles": ideal}


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def layers(dut, stalls):
    tb = TB(dut, stalls)
    # Each config twice, so a layer follows one of its own width and one of another.
    names = [n for n in tb.info["configs"] for _ in range(2)]
    result = await tb.run_jobs([tb.layer(name) for name in names])
    tb.record("layers", {**result, "macs": 0, "peak_macs_per_cycle": 0})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
