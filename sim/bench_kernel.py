"""cocotb bench for any XLS kernel behind its stream adapter, against `pyref.opcases`.

The kernel's vector set (named after it) holds one array per argument and per result,
under the names the port description lists.
"""

import cocotb

from pyref import vectors
from sim.streams import StreamTB


def _records(arrays: dict, names: list):
    """Per-case payloads: plain ints for one field, dicts of fields otherwise."""
    if len(names) == 1:
        return [int(v) for v in arrays[names[0]]]
    return [dict(zip(names, map(int, values), strict=True))
            for values in zip(*(arrays[n] for n in names), strict=True)]


class TB(StreamTB):
    """Kernel bench: one argument record in, one result record out, in order."""

    def stimulus(self):
        v = vectors.load(self.info["kernel"], self.vector_dir, self.seed)
        return _records(v, self.info["inputs"]), _records(v, self.info["outputs"])


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def kernel(dut, stalls):
    tb = TB(dut, stalls)
    inputs, expected = tb.stimulus()
    result = await tb.run(inputs, expected)
    # One input per cycle, then the pipeline's latency and a cycle through its result FIFO.
    ideal = len(inputs) + tb.info["latency"] + 1
    tb.record("kernel", {**result, "macs": 0, "ideal_cycles": ideal, "peak_macs_per_cycle": 0})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
