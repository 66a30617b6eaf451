"""cocotb bench: the optical I/O unit against `pyref.optical_io` on the ``optical_io`` set:
SLM packings (codes and pixels) and camera readouts of one to four passes."""

import cocotb

from pyref import vectors
from sim.streams import StreamTB

#: The SLM side's fields, in `hw.slm_packer.PIXELS`.
PIXEL_FIELDS = ("pos", "pos_frame", "pos_row", "pos_col", "neg", "neg_frame", "neg_row",
                "neg_col")


class TB(StreamTB):
    """Each half on its own: packings through ``layout``/``x`` to ``slm``, readouts through
    ``passes``/``camera`` to ``o``."""

    def vectors(self) -> dict:
        return vectors.load("optical_io", self.vector_dir, self.seed)

    def packs(self) -> dict:
        v = self.vectors()
        inputs, expected = {"layout": [], "x": []}, {"slm": []}
        for pack in sorted({k.split(".")[0] for k in v if k.startswith("pack")}):
            regs = {}
            for key, value in v.items():
                if key.startswith(f"{pack}.reg."):
                    *group, name = key.split(".")[2:]
                    (regs.setdefault(group[0], {}) if group else regs)[name] = int(value)
            inputs["layout"].append(regs)
            inputs["x"] += v[f"{pack}.x"].tolist()
            columns = zip(*(v[f"{pack}.{f}"].tolist() for f in PIXEL_FIELDS), strict=True)
            expected["slm"] += [dict(zip(PIXEL_FIELDS, c, strict=True)) for c in columns]
        # A layout, then a value a cycle, through two stages.
        ideal = len(inputs["x"]) + len(inputs["layout"]) + 2
        return {"inputs": inputs, "expected": expected, "ideal_cycles": ideal}

    def readouts(self) -> dict:
        v = self.vectors()
        lanes = self.info["lanes"]
        inputs, expected = {"passes": [], "camera": []}, {"o": []}
        for read in sorted({k.split(".")[0] for k in v if k.startswith("read")}):
            camera, scales = v[f"{read}.camera"], v[f"{read}.scales"]
            beats = camera.shape[1] // lanes
            for p, scale in enumerate(scales.tolist()):
                inputs["passes"].append({"scale": scale, "beats": beats, "first": int(p == 0),
                                         "last": int(p == len(scales) - 1)})
                inputs["camera"] += camera[p].reshape(beats, lanes).tolist()
            expected["o"] += v[f"{read}.y"].reshape(-1, lanes).tolist()
        # Per pass a descriptor, a camera beat a cycle and three cycles to drain; the last
        # sum leaves as the last pass drains, plus its transfer.
        ideal = len(inputs["camera"]) + 4 * len(inputs["passes"]) + 1
        return {"inputs": inputs, "expected": expected, "ideal_cycles": ideal}


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def converts(dut, stalls):
    """The packings, then the readouts; each half's cycles in the breakdown."""
    tb = TB(dut, stalls)
    jobs = {"packs": tb.packs(), "readouts": tb.readouts()}
    parts = {name: {**await tb.run(job["inputs"], job["expected"]),
                    "ideal_cycles": job["ideal_cycles"]} for name, job in jobs.items()}
    lanes = tb.info["lanes"]
    total = {k: sum(p[k] for p in parts.values())
             for k in ("vectors", "mismatches", "cycles", "ideal_cycles")}
    # A multiply per camera pixel: amplitude times the pass's scale.
    products = len(jobs["readouts"]["inputs"]["camera"]) * lanes
    tb.record("converts", {**total, "macs": products,
                           "peak_macs_per_cycle": lanes, "breakdown": parts})
    assert total["mismatches"] == 0, f"{total['mismatches']} mismatches against pyref"
