"""The accelerator's cycle model, calibrated against the RTL, and its projections.

A layer's cycles are its units' busy cycles or its memory traffic, whichever is longer,
plus a fixed cost for its kind: the pipelines filling and draining, and the controller
handing out the layer's instructions and waiting for the layer before it (`OVERHEAD`,
fitted to `make sim`'s per-layer cycles of the tiny model; docs/results.md gives the
errors). The jobs and the words come from the functional model (`pyref.machine`) running
the same program, so the model sees the same routing as the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyref import intmodel, isa
from pyref.config import HardwareConfig

#: Cycles a step of the attention unit takes at least (its output loop).
ATTENTION_MIN_STEP = 5
#: The MoE unit takes a router logit every other cycle.
MOE_LOGIT_INTERVAL = 2
#: Cycles between a weight tile's last MAC and the next tile's first when loading the next
#: tile, not the tokens, bounds an output chunk (layers of a few tokens: the heads, small
#: expert batches): the tile's hand-over and the pipeline's turn. Fitted with `OVERHEAD`.
TILE_SWITCH = 18

#: The error the model is held to on every layer (`tests/test_sim.py`; the largest on the
#: tiny model is 3.6 %, on m3vit-tiny's first two blocks see docs/results.md).
TOLERANCE = 0.05

#: Per layer kind: fixed cycles, cycles per instruction the controller runs for the layer,
#: and per instruction it runs after the layer's first wait (fetch, decode, hand-out),
#: fitted by `fit` to `make sim`'s per-layer cycles of the tiny model (SEED=0, 8 images,
#: both tasks; `python -m scripts.refit` refits them and `TILE_SWITCH`). The two
#: instruction counts move together, so the terms are not separately physical; `make sim`
#: reports each layer's error.
OVERHEAD = {"attention": (1.4, 16.85, 14.04), "experts": (113.32, 122.72, -103.93),
            "layernorm": (3.83, 19.13, 7.65), "linear": (94.44, 28.22, -46.63),
            "residual": (1.68, 6.71, 32.5)}


@dataclass
class LayerCost:
    """One layer's work: ``compute`` busy cycles of its units at their ideal rates (its
    compute-bound limit), ``words`` moved through the memory port, the linear unit's
    ``macs`` (padding included), used ``experts`` and ``instructions`` run."""

    name: str
    kind: str
    compute: int = 0
    #: the units' cycles with their traffic through the port counted
    busy: int = 0
    words: int = 0
    macs: int = 0
    experts: int = 0
    instructions: int = 0
    #: instructions run after the layer's first WAIT (the others overlap the layer before)
    waiting: int = 0
    bias: bool = False

    def features(self) -> list:
        return [1.0, self.instructions, self.waiting]

    def cycles(self, overhead: dict = OVERHEAD) -> float:
        return self.busy + sum(k * f for k, f in zip(overhead[self.kind], self.features(),
                                                     strict=True))


def kind_of(layer: str) -> str:
    """The layer kind of a layer name (`pyref.compiler`'s marks)."""
    last = layer.split(".")[-1]
    if last.startswith(("ln", "norm")):
        return "layernorm"
    if last.startswith(("residual", "pos")):
        return "residual"
    if last in ("attention", "experts"):
        return last
    return "linear"


def job_cycles(hw: HardwareConfig, unit: str, f: dict) -> tuple[int, int]:
    """A unit's busy cycles for one command: at its ideal rate, and with its traffic
    through the memory port (a word per cycle, shared by every stream) counted.

    The linear unit reads each token's input once, while its first output chunk is
    computed, so that pass moves a word per slot besides the weights; the later passes
    move only weights and the outputs of the pass before."""
    words = isa.word_bits(hw)
    if unit == "linear":
        t, ci, co = f["tokens"], f["chunks"], f["out_chunks"]
        tile = ci * hw.tile_out  # one output chunk's weight rows (a word each)
        ideal = hw.tile_out + t * ci * co
        first = t * ci + tile
        later = (co - 1) * max(t * ci, tile + t + TILE_SWITCH)
        return ideal, max(ideal, hw.tile_out + first + later + t)
    if unit == "attention":
        if f["flush"]:
            return 0, 0
        steps = len(intmodel.attention_schedule(f["tokens"], hw.parallelism))
        ideal = steps * max(f["chunks"], ATTENTION_MIN_STEP)
        # A head's keys and values load into their replays (a chunk per cycle) before its
        # first step; q, k, v and the output move a row per token each.
        load = f["tokens"] * f["chunks"]
        traffic = round(4 * load * hw.attention_width * 16 / words)
        return ideal, max(ideal + load, traffic)
    if unit == "layernorm":
        ideal = f["tokens"] * f["chunks"]
        return ideal, 2 * ideal + 2 * f["chunks"]
    if unit in ("gather", "combine"):
        ideal = f["tokens"] * f["chunks"]
        return ideal, 2 * ideal
    if unit == "moe":
        ideal = MOE_LOGIT_INTERVAL * f["tokens"] * f["value"]
        return ideal, ideal
    raise ValueError(f"no cycle model for unit '{unit}'")


def prefetch_words(hw: HardwareConfig, bias: bool) -> int:
    """Words that load before a linear layer starts: the weight and bias read ports'
    buffers (`isa.READ_BUFFER_WORDS` each), the unit's weight tiles (a tile in use, the
    next and its early rows) and its first bias (two words)."""
    buffer = isa.READ_BUFFER_WORDS
    return buffer + 3 * hw.tile_out + (buffer + 2 if bias else 0)


def layer_costs(image, run, task: int) -> list[LayerCost]:
    """Every layer of ``task``'s program with the work the functional model's ``run`` did."""
    hw = image.hw
    costs = {name: LayerCost(name, kind_of(name)) for _, name in image.marks[task]}
    for job in run.jobs:
        cost = costs[image.layer_at(task, job.pc)]
        ideal, busy = job_cycles(hw, job.unit, job.fields)
        cost.compute += ideal
        cost.busy += busy
        if job.unit == "linear":
            f = job.fields
            cost.bias = bool(f["bias"])
            cost.macs += f["tokens"] * f["chunks"] * f["out_chunks"] * hw.tile_in * hw.tile_out
        if job.unit == "moe":
            cost.experts = len(job.routing.used)
    for pc, _, words in run.transfers:
        cost = costs[image.layer_at(task, pc)]
        cost.words += words
    # The residual adder has no command: a beat of each of its three streams per word.
    for cost in costs.values():
        if cost.kind == "residual":
            cost.compute, cost.busy = cost.words // 3, cost.words
    # A linear layer's first weight words load while the layer before runs (the reader's
    # buffer and the unit's tile buffers fill), on that layer's port time.
    ordered = list(costs.values())
    for before, cost in zip(ordered, ordered[1:], strict=False):
        if cost.kind == "linear":
            ahead = min(prefetch_words(hw, cost.bias), cost.busy - cost.compute)
            cost.busy -= ahead
            before.busy += ahead
    per = isa.INSTRUCTION_BITS // isa.word_bits(hw)
    waited = set()
    for pc in run.pcs:
        cost = costs[image.layer_at(task, pc)]
        cost.instructions += 1
        cost.waiting += cost.name in waited
        if image.programs[task][(pc - image.entries[task]) // per].op is isa.Op.WAIT:
            waited.add(cost.name)
    return list(costs.values())


def predict(costs: list[LayerCost], overhead: dict = OVERHEAD) -> dict:
    return {c.name: c.cycles(overhead) for c in costs}


def fit(samples: list[tuple[LayerCost, int]]) -> dict:
    """Per kind, the fixed cycles, the cycles per instruction and per instruction after
    the layer's first wait that best fit the measured cycles beyond the busy ones (least
    squares). In a MoE layer the instructions grow with the experts used: each runs the
    loop's body."""
    import numpy as np

    overhead = {}
    for kind in sorted({c.kind for c, _ in samples}):
        mine = [(c, m) for c, m in samples if c.kind == kind]
        excess = np.array([m - c.busy for c, m in mine], dtype=float)
        a = np.array([c.features() for c, _ in mine])
        solution, *_ = np.linalg.lstsq(a, excess, rcond=None)
        overhead[kind] = tuple(round(float(v), 2) for v in solution)
    return overhead


def projection(costs: list[LayerCost], hw: HardwareConfig, mhz: float,
               overhead: dict = OVERHEAD) -> dict:
    """Frames per second at ``mhz``, beside the compute-bound limit, with the linear
    unit's MAC utilisation and the bytes per image."""
    cycles = sum(predict(costs, overhead).values())
    ideal = sum(c.compute for c in costs)
    macs = sum(c.macs for c in costs)
    word_bytes = isa.word_bits(hw) // 8
    return {"mhz": mhz, "cycles": round(cycles), "fps": mhz * 1e6 / cycles,
            "limit_cycles": ideal, "limit_fps": mhz * 1e6 / ideal,
            "of_limit": ideal / cycles,
            "mac_utilisation": macs / (hw.peak_macs_per_cycle * cycles),
            "bytes_per_image": sum(c.words for c in costs) * word_bytes}
