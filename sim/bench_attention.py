"""cocotb bench: the attention unit against `pyref.intmodel.attention_head` on the
``attention`` set, at the unit's parallelism.

Every head of the configs in the port description's ``configs`` runs as one job, then a
flush sends the last rows out. The bench also logs each stream's transfers, so the traffic
per key step comes from the simulation.
"""

import cocotb
import numpy as np

from pyref import intmodel, vectors
from pyref.config import get_hw_config
from sim.streams import StreamTB


def chunked(row, width: int) -> list:
    return [row[k:k + width].tolist() for k in range(0, len(row), width)]


class TB(StreamTB):
    """Attention bench: heads become commands and the q, k and v rows in the unit's order."""

    @property
    def width(self) -> int:
        return get_hw_config(self.info["hw"]).attention_width

    def heads(self, name: str):
        """Per head of config ``name`` (or of the ``edge`` heads): its inputs and expected
        output."""
        v = vectors.load("attention", self.vector_dir, self.seed)
        p = self.info["parallelism"]
        if p not in vectors.ATTENTION_PARALLELISMS:
            raise ValueError(f"the attention set has no results for parallelism {p}: add it "
                             "to pyref.vectors.ATTENTION_PARALLELISMS")
        keys = ("q", "k", "v", f"p{p}.y")
        if name == "edge":
            heads = [[v[f"edge.h{i}.{key}"] for key in keys]
                     for i in range(len(vectors.EDGE_HEADS))]
        else:
            heads = zip(*(v[f"{name}.{key}"] for key in keys), strict=True)
        for head, (q, k, val, y) in enumerate(heads):
            yield {"name": f"{name}.head{head}", "q": q, "k": k, "v": val, "y": y}

    def job(self, head) -> tuple[dict, list, int]:
        """A head's beats per stream, its expected beats, and its key steps."""
        width, p = self.width, self.info["parallelism"]
        tokens, head_dim = head["q"].shape
        if head_dim % width:
            raise ValueError(f"{head['name']}: head_dim {head_dim} is not a whole number of "
                             f"{width}-value chunks")
        steps = len(intmodel.attention_schedule(tokens, p))
        keys = np.arange(steps) % tokens
        shift = intmodel.score_shift(head_dim) - intmodel.ACT.frac
        streams = {
            "cmd": [{"tokens": tokens, "chunks": head_dim // width, "scale_shift": shift,
                     "flush": 0}],
            "q": [c for row in head["q"] for c in chunked(row, width)],
            "k": [c for key in keys for c in chunked(head["k"][key], width)],
            "v": [c for key in keys for c in chunked(head["v"][key], width)],
        }
        return streams, [c for row in head["y"] for c in chunked(row, width)], steps

    def config_job(self, name: str) -> dict:
        """Every head of config ``name``, with a flush after the last and wherever the row
        length changes."""
        inputs = {"cmd": [], "q": [], "k": [], "v": []}
        expected, steps, macs = [], 0, 0
        heads = list(self.heads(name))
        for head, following in zip(heads, [*heads[1:], None], strict=True):
            streams, rows, n = self.job(head)
            for port, beats in streams.items():
                inputs[port] += beats
            expected += rows
            steps += n
            macs += 2 * head["q"].size * len(head["q"])  # q·k and p·v per query and key
            tokens, head_dim = head["q"].shape
            if following is None or following["q"].shape[1] != head_dim:
                inputs["cmd"].append({"tokens": 0, "chunks": head_dim // self.width,
                                      "scale_shift": 0, "flush": 1})
        return {"inputs": inputs, "expected": expected, "steps": steps, "macs": macs,
                "chunks": head_dim // self.width, "tokens": tokens}

    def ideal(self, job: dict) -> int:
        """A cycle to take the first command; one chunk per cycle, with the last chunks of
        two steps at least ``min_step_cycles`` apart; a cycle to find each head done (unless
        a step's wait covers it), in which the next command is taken; the flush up to the
        lane of the last query (the others finished during the head); then that row's way
        out, a chunk per cycle."""
        lanes, chunks = self.info["parallelism"], job["chunks"]
        step_cycles = max(chunks, self.info["min_step_cycles"])
        steps = job["steps"] + (job["tokens"] - 1) % lanes + 1
        heads = len(job["inputs"]["cmd"]) - 1
        last_chunk = chunks + (steps - 1) * step_cycles + heads * (step_cycles == chunks)
        return last_chunk + self.info["latency"] + chunks

    def traffic(self, job: dict) -> dict:
        """Rows moved per key step, from the transfer log of the last run: the mean over the
        run, and the peak over the key steps (a step's window runs from its first key chunk
        to the next step's; a row counts in the window of its first chunk)."""
        chunks = job["chunks"]
        starts = self.beat_cycles["k"][::chunks]
        # The last step's window is as long as a step; the flush after it reads no keys.
        edges = np.append(starts, starts[-1] + max(chunks, self.info["min_step_cycles"]))
        out = {}
        for name in ("q", "k", "v", "o"):
            row_starts = np.asarray(self.beat_cycles[name][::chunks])
            per_step = np.histogram(row_starts, bins=edges)[0]
            out[name] = {"rows_per_step": round(len(row_starts) / job["steps"], 4),
                         "peak_rows_per_step": float(per_step.max())}
        out["bytes_per_step"] = round(sum(out[n]["rows_per_step"] for n in ("q", "k", "v", "o"))
                                      * chunks * self.width * 2, 2)
        return out


@cocotb.test()
async def heads(dut):
    """Each config's heads alone, no stalls: cycles and traffic per key step."""
    tb = TB(dut, stalls=False)
    tb.log_beats = True
    total = {"vectors": 0, "mismatches": 0, "cycles": 0, "ideal_cycles": 0, "macs": 0}
    breakdown = {}
    for name in tb.info["configs"]:
        job = tb.config_job(name)
        result = await tb.run(job["inputs"], job["expected"])
        breakdown[name] = {"cycles": result["cycles"], "ideal_cycles": tb.ideal(job),
                           "steps": job["steps"], "macs": job["macs"],
                           "traffic": tb.traffic(job)}
        for key, value in (*result.items(), ("ideal_cycles", tb.ideal(job)),
                           ("macs", job["macs"])):
            total[key] += value
    # The edge heads (one, two and three tokens) for bit-exactness only.
    edge = tb.config_job("edge")
    total["mismatches"] += (await tb.run(edge["inputs"], edge["expected"]))["mismatches"]
    tb.record("heads", {**total, "breakdown": breakdown,
                        "peak_macs_per_cycle": tb.info["peak_macs_per_cycle"]})
    assert int(dut.error.value) == 0, "the unit refused a command"
    assert total["mismatches"] == 0, f"{total['mismatches']} mismatches against pyref"


@cocotb.test()
async def heads_with_stalls(dut):
    """Every config's heads back to back, all streams stalling at random."""
    tb = TB(dut, stalls=True)
    jobs = [tb.config_job(name) for name in [*tb.info["configs"], "edge"]]
    inputs = {port: [b for job in jobs for b in job["inputs"][port]] for port in jobs[0]["inputs"]}
    result = await tb.run(inputs, [row for job in jobs for row in job["expected"]])
    tb.record("heads", result)
    assert int(dut.error.value) == 0, "the unit refused a command"
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"
