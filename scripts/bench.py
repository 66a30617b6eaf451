"""make bench: heavy measurements kept out of CI.

Runs every unit bench over several seeds (bit-exactness must hold for each) and records
cycles, MAC rate and Verilator speed in build/report/bench.json.
"""

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from scripts.common import REPORT, main, seed_argument
from scripts.designs import DESIGNS, design_argument
from scripts.sim import passed, simulate


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds from --seed on")
    design_argument(parser)
    args = parser.parse_args(argv)
    console = Console()
    names = args.designs or list(DESIGNS)
    runs = {}
    for seed in range(args.seed, args.seed + args.seeds):
        console.print(f"[bold]seed {seed}[/bold]")
        runs[seed] = simulate(names, seed, False, console)
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
        }
        r = rows[name]
        table.add_row(name, str(r["vectors"]), str(r["mismatches"]), str(r["cycles"]),
                      str(r["ideal_cycles"]), str(r["macs_per_cycle"]), str(r["sim_cycles_per_s"]))
    console.print(table)
    REPORT.mkdir(parents=True, exist_ok=True)
    out = REPORT / "bench.json"
    out.write_text(json.dumps({"seeds": list(runs), "units": rows}, indent=2) + "\n")
    console.print(f"wrote {out}")
    if not all(passed(r) for seed_runs in runs.values() for r in seed_runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    run()
