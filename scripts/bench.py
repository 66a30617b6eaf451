"""make bench: heavy measurements kept out of CI.

Runs every unit bench over several seeds (bit-exactness must hold for each) and records
cycles, MAC rate and Verilator speed; then, at the first seed, the parameter variants: the
attention unit at P = 1, 2, 4 and 8 (traffic per key step) and the linear and attention
units with the edge-moe set; the whole accelerator end to end (256 tiny images, and
m3vit-tiny's first two blocks and all twelve on the edge-moe set), and the cycle model's
projection of m3vit-tiny. Times the integer golden model (tiny per image, and one
m3vit-tiny image with its full trace); reruns `make fidelity`. Results go to
build/report/bench.json and the report.
"""

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
from rich.table import Table

from pyref import data
from pyref.config import HW_CONFIGS, get_config
from pyref.intmodel import IntModel
from scripts import fidelity, report
from scripts.common import BITSTREAM, REPORT, main, make_console, seed_argument
from scripts.designs import DESIGNS, TOP_DESIGNS, design_argument
from scripts.sim import model_summary, passed, simulate

#: The end-to-end runs of `make bench` (`scripts.designs.TOP_DESIGNS`).
END_TO_END = ("top_256", "top_m3vit_blocks", "top_m3vit")
def accelerator_clock() -> tuple:
    """The ecp5-85f accelerator's clock in MHz and where it comes from: the board's measured
    ECP5 Fmax (`make bitstream`), or the 100 MHz target without its report."""
    path = BITSTREAM / "ulx3s" / "report.json"
    if path.exists():
        return json.loads(path.read_text())["fmax_mhz"], "the ULX3S board's measured Fmax"
    return 100.0, "target (no board bitstream report)"


def projections(seed: int) -> dict:
    """m3vit-tiny's frames per second from the cycle model (`pyref.perf`): the board's
    compute with m3vit-tiny's buffers (``ecp5-85f-m3vit``) at `accelerator_clock`, and
    the edge-moe set at 300 MHz."""
    from pyref import machine, perf
    from pyref.workload import workload

    clocks = {"ecp5-85f-m3vit": accelerator_clock(),
              "edge-moe": (300.0, "Edge-MoE's clock on the ZCU102")}
    out = {}
    for hw, (mhz, source) in clocks.items():
        work = workload("m3vit-tiny", hw, 1, seed, 1 << 23)
        for task in range(work.image.config.tasks):
            _, run = machine.infer(work.image, work.codes[0], task)
            costs = perf.layer_costs(work.image, run, task)
            out[f"{hw}.task{task}"] = {**perf.projection(costs, work.image.hw, mhz),
                                       "hw": hw, "task": task, "clock": source}
    return out


def golden_speed(seed: int) -> dict:
    """Wall time of the integer model: tiny per image, and m3vit-tiny with a full trace."""
    import torch

    from pyref.model import MultiTaskViT, load_checkpoint, parameters

    tiny = get_config("tiny")
    state = parameters(load_checkpoint(tiny))
    model = IntModel(tiny, state)
    test = data.load(tiny, "test").subset(slice(0, 64))
    codes = model.quantise_input(data.patchify(test.images, tiny.patch))
    start = time.perf_counter()
    for task in range(tiny.tasks):
        for image in codes:
            model.forward(image[None], task)
    per_image = (time.perf_counter() - start) / (tiny.tasks * len(codes))

    big = get_config("m3vit-tiny")
    torch.manual_seed(seed)
    state = parameters(MultiTaskViT(big))
    model = IntModel(big, state)
    image = np.random.default_rng(seed).normal(0, 1, (1, big.patches, big.patch_pixels))
    start = time.perf_counter()
    model.forward(model.quantise_input(image), 0, trace={})
    return {"tiny_seconds_per_image": round(per_image, 5),
            "m3vit_tiny_trace_seconds": round(time.perf_counter() - start, 3)}


#: Attention parallelisms of the bandwidth sweep (ecp5-85f's chunk width).
SWEEP_PARALLELISMS = (1, 2, 4, 8)


def variants() -> list:
    """Designs measured only here: the attention unit at each parallelism of the sweep, and
    both units with the edge-moe parameter set (too big for the ECP5; cycles only)."""
    attention, linear = DESIGNS["attention"], DESIGNS["linear"]
    edge = HW_CONFIGS["edge-moe"]
    sweep = [replace(attention, name=f"attention_p{p}", params={**attention.params,
                                                               "parallelism": p})
             for p in SWEEP_PARALLELISMS]
    return sweep + [
        replace(linear, name="linear_edge_moe", params={"hw": edge.name}),
        replace(attention, name="attention_edge_moe",
                params={"hw": edge.name, "parallelism": edge.parallelism}),
    ]


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds from --seed on")
    design_argument(parser)
    args = parser.parse_args(argv)
    console = make_console()
    names = args.designs or list(DESIGNS)
    runs = {}
    for seed in range(args.seed, args.seed + args.seeds):
        console.print(f"[bold]seed {seed}[/bold]")
        runs[seed] = simulate(names, seed, False, console)
    console.print("[bold]parameter variants (first seed)[/bold]")
    extra = simulate(variants(), args.seed, False, console)
    console.print("[bold]end to end (first seed)[/bold]")
    whole = simulate(list(END_TO_END), args.seed, False, console)
    models = {n: model_summary(TOP_DESIGNS[n], r, args.seed) for n, r in whole.items()}
    with console.status("projecting m3vit-tiny with the cycle model"):
        projection = projections(args.seed)
    table = Table(title=f"make bench: {args.seeds} seeds from {args.seed}")
    for column in ("unit", "vectors", "mismatches", "cycles", "ideal", "MAC/cycle",
                   "sim cycles/s"):
        table.add_column(column)
    rows = {}
    for name in names:
        per_seed = [runs[s][name] for s in runs]
        first = per_seed[0]
        rows[name] = {
            "vectors": sum(r["vectors"] for r in per_seed),
            "mismatches": sum(r["mismatches"] for r in per_seed),
            "failed": sum(r["failed"] for r in per_seed),
            "cycles": first["cycles"],
            "ideal_cycles": first["ideal_cycles"],
            "macs_per_cycle": round(first["macs"] / first["cycles"], 3) if first["macs"] else 0,
            "sim_cycles_per_s": round(sum(r["sim_cycles_per_s"] for r in per_seed) / len(per_seed)),
            **({"breakdown": first["breakdown"]} if "breakdown" in first else {}),
        }
        r = rows[name]
        table.add_row(name, str(r["vectors"]), str(r["mismatches"]), str(r["cycles"]),
                      str(r["ideal_cycles"]), str(r["macs_per_cycle"]), str(r["sim_cycles_per_s"]))
    console.print(table)
    with console.status("timing the integer golden model"):
        golden = golden_speed(args.seed)
    console.print(f"integer model: {golden['tiny_seconds_per_image'] * 1000:.1f} ms per tiny "
                  f"image, {golden['m3vit_tiny_trace_seconds']:.2f} s for an m3vit-tiny trace")
    REPORT.mkdir(parents=True, exist_ok=True)
    out = REPORT / "bench.json"
    out.write_text(json.dumps({"seeds": list(runs), "written": time.time(), "units": rows,
                               "variants": extra, "golden": golden, "models": models,
                               "projection": projection}, indent=2) + "\n")
    console.print(f"wrote {out}")
    fidelity.run([])
    console.print(f"report: {report.write()}")
    if not all(passed(r) for seed_runs in [*runs.values(), extra, whole]
               for r in seed_runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    run()
