"""make report: rebuild build/report/report.md and its plots from saved results."""

import argparse
import json

from scripts.common import BITSTREAM, REPORT, main


def _plot_throughput(units: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(units)
    efficiency = [100 * units[n]["ideal_cycles"] / units[n]["cycles"] if units[n]["cycles"] else 0
                  for n in names]
    fig, ax = plt.subplots(figsize=(6, 3))
    bars = ax.bar(names, efficiency)
    ax.bar_label(bars, fmt="%.1f %%")
    ax.axhline(100, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 110)
    ax.set_ylabel("ideal / measured cycles (%)")
    ax.set_title("Throughput against one beat per cycle, no stalls")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write() -> str:
    """Write report.md from summary.json and any bitstream reports; return its path."""
    REPORT.mkdir(parents=True, exist_ok=True)
    summary_path = REPORT / "summary.json"
    lines = ["# lumoe report", ""]
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        units = summary["units"]
        lines += [f"## RTL against pyref (`make sim`, SEED={summary['seed']})", "",
                  "| unit | vectors | mismatches | cycles | ideal | MACs | MAC/cycle | peak |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in units.items():
            rate = f"{r['macs'] / r['cycles']:.2f}" if r["macs"] and r["cycles"] else "-"
            lines.append(f"| {name} | {r['vectors']} | {r['mismatches']} | {r['cycles']} | "
                         f"{r['ideal_cycles']} | {r['macs']} | {rate} | "
                         f"{r['peak_macs_per_cycle']} |")
        _plot_throughput(units, REPORT / "throughput.png")
        lines += ["", "Cycles run from the first input accepted to the last result taken, "
                  "with no stalls; mismatches count every test, stalled ones included.", "",
                  "![throughput per unit](throughput.png)", ""]
    else:
        lines += ["No simulation results yet: run `make sim`.", ""]
    reports = sorted(BITSTREAM.glob("*/report.json"))
    if reports:
        lines += ["## ECP5 implementation (`make bitstream`)", "",
                  "| design | LUT4 | FF | DSP | BRAM | Fmax (MHz) | target | build (s) |",
                  "|---|---|---|---|---|---|---|---|"]
        for path in reports:
            r = json.loads(path.read_text())
            lines.append(f"| {r['design']} | {r['lut4']} | {r['ff']} | {r['dsp']} | "
                         f"{r['bram']} | {r['fmax_mhz']:.1f} | {r['target_mhz']:.0f} | "
                         f"{r['build_s']} |")
        lines += ["", "Counts are post place-and-route on the LFE5U-85F and include the serial "
                  "pin harness (its flip-flops are listed in each report.json).", ""]
    path = REPORT / "report.md"
    path.write_text("\n".join(lines))
    return str(path)


@main
def run(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(f"wrote {write()}")


if __name__ == "__main__":
    run()
