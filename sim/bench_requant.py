"""cocotb bench: the XLS requantiser behind its stream adapter, against `pyref.ops.requantise`."""

import cocotb

from pyref import vectors
from sim.streams import StreamTB


class TB(StreamTB):
    """Requantiser bench: one accumulator code in, one activation code out."""

    def stimulus(self):
        v = vectors.load("requant", self.vector_dir, self.seed)
        return [int(x) for x in v["acc"]], [int(x) for x in v["act"]]


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def requantise(dut, stalls):
    tb = TB(dut, stalls)
    inputs, expected = tb.stimulus()
    result = await tb.run(inputs, expected)
    tb.record("requantise", {**result, "macs": 0, "ideal_cycles": len(inputs),
                             "peak_macs_per_cycle": 0})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
