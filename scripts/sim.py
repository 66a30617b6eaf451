"""make sim: vectors, RTL, every unit bench in Verilator, then a summary and the report.

Exits non-zero when any unit mismatches its golden model or any bench fails.
"""

import argparse
import json
import sys
import time

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pyref import vectors
from scripts import report
from scripts.common import REPORT, SIM, VECTORS, main, make_console, seed_argument
from scripts.designs import DESIGNS, design_argument
from sim import runner


def simulate(names, seed: int, waves: bool, console: Console) -> dict:
    """Run the benches of designs ``names`` (or `Design` objects); return ``{name: results}``."""
    for name in vectors.GENERATORS:
        vectors.ensure(name, VECTORS, seed)
    units = {}
    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        for design in names:
            design = DESIGNS[design] if isinstance(design, str) else design
            task = progress.add_task(f"{design.name}: emitting Verilog")
            sources = design.verilog()
            progress.update(task, description=f"{design.name}: Verilator build and cocotb bench")
            start = time.monotonic()
            result = runner.run(design.bench_spec(sources), vectors=VECTORS,
                                build=SIM, seed=seed, waves=waves)
            result["wall_s"] = round(time.monotonic() - start, 2)
            units[design.name] = result
            progress.remove_task(task)
            status = "ok" if passed(result) else "[red]FAILED[/red]"
            console.print(f"{design.name}: {status} ({result['wall_s']} s)")
    return units


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


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--waves", action="store_true", help="write FST waveforms (make: WAVES=1)")
    design_argument(parser)
    args = parser.parse_args(argv)
    console = make_console()
    units = simulate(args.designs or list(DESIGNS), args.seed, args.waves, console)
    REPORT.mkdir(parents=True, exist_ok=True)
    path = REPORT / "summary.json"
    summary = {"seed": args.seed, "written": time.time(), "units": units}
    if args.designs and path.exists():
        # A subset run updates its units in a summary of the same seed.
        earlier = json.loads(path.read_text())
        if earlier.get("seed") == args.seed:
            summary["units"] = {**earlier["units"], **units}
    path.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(summary_table(units))
    if args.waves:
        for name, r in units.items():
            console.print(f"waveform of {name}: {r['waves']}")
    console.print(f"report: {report.write()}")
    failed = [n for n, r in units.items() if not passed(r)]
    if failed:
        console.print(f"[red]mismatches or failing benches in: {', '.join(failed)}; "
                      f"logs in {SIM}/<unit>/test.log[/red]")
        sys.exit(1)


if __name__ == "__main__":
    run()
