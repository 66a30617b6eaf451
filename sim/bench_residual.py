"""cocotb bench: the residual add against `pyref.intmodel.residual` on the ``residual`` set."""

import cocotb

from pyref import vectors
from sim.streams import StreamTB


class TB(StreamTB):
    def beats(self):
        v = vectors.load("residual", self.vector_dir, self.seed)
        lanes = self.info["lanes"]
        rows = {k: v[k].reshape(-1, lanes).tolist() for k in ("a", "b", "y")}
        return {"a": rows["a"], "b": rows["b"]}, rows["y"]


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def adds(dut, stalls):
    tb = TB(dut, stalls)
    inputs, expected = tb.beats()
    result = await tb.run(inputs, expected)
    # One beat per cycle into the output register.
    tb.record("adds", {**result, "macs": 0, "peak_macs_per_cycle": 0,
                       "ideal_cycles": len(expected) + 1})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
