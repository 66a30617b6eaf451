"""The cycle model (`pyref.perf`) against `make sim`'s measured layers, and a refit of it.

`make sim` keeps each run's cycles per layer (``build/sim/top/results.json``; its
stall-free test, ``end_to_end``). This prints the worst error per layer kind of the model
as it stands, then, for each ``TILE_SWITCH`` asked for, of a least-squares refit of
`OVERHEAD` (`pyref.perf.fit`), with the fitted values to copy into ``pyref/perf.py``
after a change to the RTL's timing. Usage:
``python -m scripts.refit [--seed N] [--tile-switch 12 16 20]``.
"""

from __future__ import annotations

import argparse
import json

from scripts.common import SIM, ToolError, main, seed_argument


def measured_runs(seed: int) -> list:
    """``(image, run, task, measured cycles per layer)`` of every stall-free run, the
    functional model's run beside the RTL's."""
    from pyref import machine
    from scripts.designs import TOP_DESIGNS
    from scripts.sim import top_workload

    path = SIM / "top" / "results.json"
    if not path.exists():
        raise ToolError(f"{path} is missing: run `make sim SEED={seed}` first")
    runs = json.loads(path.read_text())["end_to_end"]["breakdown"]["runs"]
    work = top_workload(TOP_DESIGNS["top"], seed)
    return [(work.image, machine.infer(work.image, work.codes[r["image"]], r["task"])[1],
             r["task"], r["layers"]) for r in runs]


def samples(runs: list) -> list:
    """``(LayerCost, measured cycles)`` for every layer of ``runs`` (`measured_runs`), at
    the model's `TILE_SWITCH` as it is set."""
    from pyref import perf

    return [(cost, layers[cost.name]) for image, run, task, layers in runs
            for cost in perf.layer_costs(image, run, task)]


def worst(pairs: list, overhead: dict) -> dict:
    """The largest relative error per layer kind."""
    errors = {}
    for cost, measured in pairs:
        error = abs(cost.cycles(overhead) - measured) / measured
        errors[cost.kind] = max(errors.get(cost.kind, 0.0), error)
    return errors


def show(label: str, errors: dict):
    print(f"{label}: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(errors.items())))


@main
def run(argv=None):
    from pyref import perf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seed_argument(parser)
    parser.add_argument("--tile-switch", type=int, nargs="*", default=[perf.TILE_SWITCH],
                        help="TILE_SWITCH values to refit with")
    args = parser.parse_args(argv)
    runs = measured_runs(args.seed)
    show(f"as it stands (TILE_SWITCH {perf.TILE_SWITCH})", worst(samples(runs), perf.OVERHEAD))
    kept = perf.TILE_SWITCH
    try:
        for tile_switch in args.tile_switch:
            perf.TILE_SWITCH = tile_switch  # `layer_costs` reads it
            pairs = samples(runs)
            overhead = perf.fit(pairs)
            show(f"refit, TILE_SWITCH {tile_switch}", worst(pairs, overhead))
            print(f"  OVERHEAD = {overhead}")
    finally:
        perf.TILE_SWITCH = kept


if __name__ == "__main__":
    run()
