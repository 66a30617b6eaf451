"""make sim: the whole accelerator end to end in Verilator (the shipped tiny model, 8 images,
both tasks) and the optical I/O unit's bench, or every unit bench (``--units``), then a
summary and the report.

Exits non-zero when any output mismatches its golden model or any bench fails.
"""

import argparse
import json
import sys
import threading
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pyref import vectors
from scripts import report
from scripts.common import REPORT, SIM, VECTORS, main, make_console, seed_argument
from scripts.designs import BOARD_DESIGNS, DESIGNS, TOP_DESIGNS, design_argument
from sim import runner


def simulate(names, seed: int, waves: bool, console: Console) -> dict:
    """Run the benches of designs ``names`` (or `Design` objects); return ``{name: results}``."""
    # The end-to-end benches need no vectors.
    if any(getattr(n, "name", n) not in TOP_DESIGNS for n in names):
        for name in vectors.GENERATORS:
            vectors.ensure(name, VECTORS, seed)
    units = {}
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        for design in names:
            design = SIMULATED[design] if isinstance(design, str) else design
            if design.name in TOP_DESIGNS:
                # Compile first: a checkpoint, config or memory size that cannot work is
                # named here, not deep in the bench's log.
                task = progress.add_task(f"{design.name}: compiling the model", total=None)
                top_workload(design, seed)
                progress.remove_task(task)
            task = progress.add_task(f"{design.name}: emitting Verilog", total=None)
            sources = design.verilog()
            progress.update(task, description=f"{design.name}: Verilator build and cocotb bench")
            start = time.monotonic()
            result = _run_with_progress(design, sources, seed, waves, progress, task)
            result["wall_s"] = round(time.monotonic() - start, 2)
            result["params"] = design.params
            units[design.name] = result
            progress.remove_task(task)
            status = "ok" if passed(result) else "[red]FAILED[/red]"
            console.print(f"{design.name}: {status} ({result['wall_s']} s)")
    return units


def _run_with_progress(design, sources, seed: int, waves: bool, progress, task) -> dict:
    """`runner.run` in a thread, while the bench's progress file moves the bar."""
    spec = design.bench_spec(sources)
    path = SIM / design.name / "progress.json"
    path.unlink(missing_ok=True)
    outcome = {}

    def work():
        try:
            outcome["result"] = runner.run(spec, vectors=VECTORS, build=SIM, seed=seed,
                                           waves=waves)
        except BaseException as e:  # re-raised in the main thread
            outcome["error"] = e

    thread = threading.Thread(target=work)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        progress.update(task, total=state["total"], completed=state["done"],
                        description=f"{design.name}: {state['label']}"
                                    f"{state.get('what', 'images x tasks')}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def top_workload(design, seed: int):
    """The workload an end-to-end design's bench runs (`pyref.workload`)."""
    from pyref.workload import workload

    a = design.bench_args
    return workload(a["config"], a["hw"], a["images"], seed, a["memory_words"], a.get("depth"))


def model_summary(design, result: dict, seed: int) -> dict:
    """The contract's ``model`` section from an end-to-end bench's result, with the cycle
    model's estimate of every layer (`pyref.perf`), the experts each task used and the
    integer model's error against float."""
    import numpy as np

    from pyref import machine, perf
    from pyref.formats import ACT

    work = top_workload(design, seed)
    runs = result["breakdown"]["runs"]
    cycles = sum(r["cycles"] for r in runs)
    layers, experts, errors = {}, {}, {}
    for task in sorted({r["task"] for r in runs}):
        mine = [r for r in runs if r["task"] == task]
        per_layer = {}
        use = {}
        for r in mine:
            _, run = machine.infer(work.image, work.codes[r["image"]], task)
            for cost in perf.layer_costs(work.image, run, task):
                entry = per_layer.setdefault(cost.name, {"cycles": 0, "model": 0, "ideal": 0,
                                                         "macs": 0})
                entry["cycles"] += r["layers"][cost.name] / len(mine)
                entry["model"] += cost.cycles() / len(mine)
                entry["ideal"] += cost.compute / len(mine)
                entry["macs"] += cost.macs / len(mine)
            for job in run.jobs:
                if job.unit == "moe":
                    counts = use.setdefault(work.image.layer_at(task, job.pc),
                                            [0] * work.image.config.experts)
                    for e, queue in enumerate(job.routing.queues):
                        counts[e] += len(queue)
        layers[task] = {n: {k: round(v, 1) for k, v in e.items()} for n, e in per_layer.items()}
        experts[task] = use
        diff = (ACT.dequantise(work.expected(task)) - work.float_logits(task)).ravel()
        counts, edges = np.histogram(diff, bins=40)
        errors[task] = {"max_abs": float(np.abs(diff).max()),
                        "rms": float(np.sqrt((diff**2).mean())),
                        "histogram": counts.tolist(), "edges": edges.tolist()}
    return {
        "config": design.bench_args["config"], "hw": design.bench_args["hw"],
        "images": design.bench_args["images"], "tasks": len(layers),
        "mismatches": result["mismatches"], "runs": len(runs),
        "cycles_per_image": round(cycles / len(runs)),
        "mac_utilisation": round(result["macs"] / (result["peak_macs_per_cycle"] * cycles), 4),
        "bytes_per_image": round(sum(r["read_bytes"] + r["write_bytes"] for r in runs)
                                 / len(runs)),
        "layers": layers, "metrics": result["breakdown"]["metrics"],
        "expert_tokens": experts, "logit_error": errors,
        "sim_cycles_per_s": result["sim_cycles_per_s"], "wall_s": result["wall_s"],
        "tests": result["tests"], "failed": result["failed"],
    }


def passed(result: dict) -> bool:
    return result["mismatches"] == 0 and result["failed"] == 0


def summary_table(units: dict) -> Table:
    table = Table(title="make sim: RTL against pyref")
    for column in ("unit", "vectors", "mismatches", "cycles", "ideal", "MACs",
                   "MAC/cycle (peak)", "tests"):
        table.add_column(column, justify="right" if column != "unit" else "left", no_wrap=True)
    for name, r in units.items():
        rate = f"{r['macs'] / r['cycles']:.2f} ({r['peak_macs_per_cycle']})" if r["macs"] else "-"
        style = None if passed(r) else "red"
        table.add_row(name, str(r["vectors"]), str(r["mismatches"]), str(r["cycles"]),
                      str(r["ideal_cycles"]), str(r["macs"]), rate,
                      f"{r['tests'] - r['failed']}/{r['tests']}", style=style)
    return table


def model_table(model: dict) -> Table:
    table = Table(title=f"make sim: {model['config']} end to end on {model['hw']} "
                        f"({model['images']} images x {model['tasks']} tasks)")
    for column in ("task", "mismatches", "cycles/image", "MAC utilisation", "bytes/image",
                   "accuracy (RTL)", "accuracy (int model)"):
        table.add_column(column, justify="right")
    for task, layers in model["layers"].items():
        metric = model["metrics"].get(str(task), model["metrics"].get(task, {}))
        cycles = sum(e["cycles"] for e in layers.values())
        accuracy = [f"{metric[k]:.3f}" if k in metric else "-" for k in ("rtl", "intmodel")]
        table.add_row(str(task), str(model["mismatches"]), f"{cycles:,.0f}",
                      f"{model['mac_utilisation']:.1%}", f"{model['bytes_per_image']:,}",
                      *accuracy)
    return table


#: `make sim`'s designs: the Edge-MoE accelerator end to end, and ConvShareViT's optical I/O
#: unit (the electronics of the other system).
MAKE_SIM = ("top", "optical_io")
#: Every design with a bench: the units, the end-to-end runs and the board through its UART,
#: on a simulated memory and on the SDRAM chip model (`make sim-board`).
SIMULATED = {**DESIGNS, **TOP_DESIGNS, **BOARD_DESIGNS}


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--waves", action="store_true", help="write FST waveforms (make: WAVES=1)")
    parser.add_argument("--units", action="store_true",
                        help="run every unit's bench instead of the whole accelerator")
    design_argument(parser, SIMULATED,
                    f"{', '.join(MAKE_SIM)}, or every unit with --units")
    args = parser.parse_args(argv)
    console = make_console()
    names = args.designs or (list(DESIGNS) if args.units else list(MAKE_SIM))
    results = simulate(names, args.seed, args.waves, console)
    units = {n: r for n, r in results.items() if n not in TOP_DESIGNS}
    REPORT.mkdir(parents=True, exist_ok=True)
    path = REPORT / "summary.json"
    summary = {"seed": args.seed, "written": time.time(), "units": units, "model": None,
               "models": {}}
    if path.exists():
        # A partial run updates its part of a summary of the same seed.
        earlier = json.loads(path.read_text())
        if earlier.get("seed") == args.seed:
            summary["units"] = {**earlier.get("units", {}), **units}
            summary["model"] = earlier.get("model")
            summary["models"] = earlier.get("models", {})
    for name, result in results.items():
        if name in TOP_DESIGNS:
            # `model` is make sim's run; the longer ones keep their own names.
            model = model_summary(TOP_DESIGNS[name], result, args.seed)
            summary["models"][name] = model
            if name == "top":
                summary["model"] = model
            console.print(model_table(model))
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if units:
        console.print(summary_table(units))
    if args.waves:
        for name, r in results.items():
            console.print(f"waveform of {name}: {r['waves']}")
    console.print(f"report: {report.write()}")
    failed = [n for n, r in results.items() if not passed(r)]
    if failed:
        console.print(f"[red]mismatches or failing benches in: {', '.join(failed)}; "
                      f"logs in {SIM}/<unit>/test.log[/red]")
        sys.exit(1)


if __name__ == "__main__":
    run()
