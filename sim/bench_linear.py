"""cocotb bench: the linear unit against `pyref.intmodel.linear` on the ``linear`` set.

Every layer shape of the configs in the port description's ``configs`` runs as one job, all
jobs back to back. Inputs and outputs are zero-padded to whole chunks; the padded outputs are
checked too (their weights and biases are zero).
"""

import cocotb
import numpy as np

from pyref import intmodel, vectors
from pyref.config import get_config, get_hw_config
from sim.streams import StreamTB


def pad(a, shape) -> np.ndarray:
    """``a`` in the top-left corner of zeros of ``shape``."""
    out = np.zeros(shape, dtype=np.int64)
    out[tuple(slice(0, n) for n in np.shape(a))] = a
    return out


def chunks(a, size: int) -> list:
    """The columns of ``a`` in runs of ``size`` (``size`` divides the width)."""
    return [a[..., k:k + size] for k in range(0, a.shape[-1], size)]


class TB(StreamTB):
    """Linear bench: each layer becomes a command, its streams and its expected rows."""

    def layers(self):
        """``(set, layer, arrays)`` for every layer of the configs under test, then the
        schedule's edge cases (`pyref.vectors.EDGE_LAYERS`)."""
        v = vectors.load("linear", self.vector_dir, self.seed)
        sets = {**{n: get_config(n).linear_layers() for n in self.info["configs"]},
                "edge": vectors.EDGE_LAYERS}
        for name, layers in sets.items():
            for layer in layers:
                key = f"{name}.{layer.name}"
                yield name, layer, {k: v.get(f"{key}.{k}") for k in ("x", "weight", "bias", "y")}

    def job(self, layer, arrays) -> tuple[dict, list]:
        """One layer's beats per input stream, and its expected output beats."""
        hw = get_hw_config(self.info["hw"])
        hw.check_layer(layer)
        n_in, n_out = -(-layer.inputs // hw.tile_in), -(-layer.outputs // hw.tile_out)
        x = pad(arrays["x"], (layer.tokens, n_in * hw.tile_in))
        weight = pad(arrays["weight"], (n_out * hw.tile_out, n_in * hw.tile_in))
        bias = pad(arrays["bias"], (n_out * hw.tile_out,)) if layer.bias else None
        y = intmodel.linear(x, weight, bias, gelu=layer.gelu)
        if not np.array_equal(y[:, :layer.outputs], arrays["y"]):
            raise AssertionError(f"{layer.name}: padding changed pyref's result")
        streams = {
            "cmd": [{"tokens": layer.tokens, "in_chunks": n_in, "out_chunks": n_out,
                     "bias": int(layer.bias), "gelu": int(layer.gelu)}],
            "x": [row.tolist() for chunk in chunks(x, hw.tile_in) for row in chunk],
            "w": [row.tolist() for rows in np.split(weight, n_out)
                  for tile in chunks(rows, hw.tile_in) for row in tile],
            "bias": [b.tolist() for b in chunks(bias, hw.tile_out)] if layer.bias else [],
        }
        expected = [row.tolist() for chunk in chunks(y, hw.tile_out) for row in chunk]
        return streams, expected

    def jobs(self) -> list[dict]:
        """Per layer: its name, streams, expected beats, slots and useful MACs."""
        hw = get_hw_config(self.info["hw"])
        jobs = []
        for name, layer, arrays in self.layers():
            streams, expected = self.job(layer, arrays)
            jobs.append({"name": f"{name}.{layer.name}", "streams": streams,
                         "expected": expected, "macs": layer.macs,
                         "slots": len(streams["x"]) * -(-layer.outputs // hw.tile_out)})
        return jobs

    def ideal(self, slots: int) -> int:
        """The first tile's rows, then one slot (an input chunk of a token against a tile)
        per cycle, then the pipeline."""
        return get_hw_config(self.info["hw"]).tile_out + slots + self.info["latency"]


@cocotb.test()
async def each_layer(dut):
    """Every layer alone, no stalls: its cycles and MAC utilisation."""
    tb = TB(dut, stalls=False)
    total = {"vectors": 0, "mismatches": 0, "cycles": 0, "ideal_cycles": 0, "macs": 0}
    per_layer = {}
    for job in tb.jobs():
        result = await tb.run(job["streams"], job["expected"])
        ideal = tb.ideal(job["slots"])
        per_layer[job["name"]] = {
            "cycles": result["cycles"], "ideal_cycles": ideal, "macs": job["macs"],
            "utilisation": round(job["macs"] / (tb.info["peak_macs_per_cycle"]
                                                * max(result["cycles"], 1)), 4)}
        for key, value in (*result.items(), ("ideal_cycles", ideal), ("macs", job["macs"])):
            total[key] += value
    tb.record("each_layer", {**total, "breakdown": per_layer,
                             "peak_macs_per_cycle": tb.info["peak_macs_per_cycle"]})
    assert total["mismatches"] == 0, f"{total['mismatches']} mismatches against pyref"


@cocotb.test()
async def back_to_back_with_stalls(dut):
    """Every layer in one stream of jobs, all streams stalling at random."""
    tb = TB(dut, stalls=True)
    jobs = tb.jobs()
    inputs = {name: [b for job in jobs for b in job["streams"][name]]
              for name in jobs[0]["streams"]}
    result = await tb.run(inputs, [row for job in jobs for row in job["expected"]])
    tb.record("back_to_back", {**result, "macs": sum(j["macs"] for j in jobs),
                               "ideal_cycles": tb.ideal(sum(j["slots"] for j in jobs)),
                               "peak_macs_per_cycle": tb.info["peak_macs_per_cycle"]})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
