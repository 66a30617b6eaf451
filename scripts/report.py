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
    lines += _fidelity_section()
    lines += _bench_section()
    lines += _linear_section()
    lines += _attention_section()
    reports = sorted(BITSTREAM.glob("*/report.json"))
    if reports:
        lines += ["## ECP5 implementation (`make bitstream`)", "",
                  "| design | LUT4 | FF | DSP | BRAM | Fmax (MHz) | target | build (s) |",
                  "|---|---|---|---|---|---|---|---|"]
        for path in reports:
            r = json.loads(path.read_text())
            lines.append(f"| {r['design']} | {r['lut4']} | {r['ff']} | {r['dsp']} | "
                         f"{r['bram']} | {r['fmax_mhz']:.1f} | {r['target_mhz']:.0f} "
                         f"{_timing(r)} | "
                         f"{r['build_s']} |")
        lines += ["", "Counts are post place-and-route on the LFE5U-85F and include the serial "
                  "pin harness (its flip-flops are listed in each report.json).", ""]
        built = [json.loads(p.read_text()) for p in reports]
        lines += _edge_moe_section({r["design"]: r for r in built})
    path = REPORT / "report.md"
    path.write_text("\n".join(lines))
    return str(path)


def _timing(report: dict) -> str:
    if report["timing_met"]:
        return "met"
    return "baseline (not required)" if report.get("baseline") else "missed"


def _edge_moe_section(built: dict) -> list:
    """Edge-MoE's softmax takes a float exp and divides every exponential by the row's sum;
    lumoe's takes a base-2 table exp, one reciprocal per row and a multiply. Both are built
    from the same formats, so their costs compare directly."""
    if not {"exp_float", "exp2", "divide", "reciprocal", "normalise"} <= set(built):
        return []
    rows = [("exp_float (Edge-MoE: float32 exp)", "every score", built["exp_float"]),
            ("exp2 (lumoe: table exp)", "every score", built["exp2"]),
            ("divide (Edge-MoE: a divide)", "every probability", built["divide"]),
            ("normalise (lumoe: a multiply)", "every probability", built["normalise"]),
            ("reciprocal (lumoe)", "once per row", built["reciprocal"])]
    lines = ["## Softmax against Edge-MoE's float exp and divider (`make bitstream`)", "",
             "| unit | runs for | LUT4 | FF | DSP | BRAM | Fmax (MHz) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {runs} | {r['lut4']} | {r['ff']} | {r['dsp']} | {r['bram']} | "
              f"{r['fmax_mhz']:.1f} |" for name, runs, r in rows]
    exp_ratio = built["exp_float"]["lut4"] / built["exp2"]["lut4"]
    divide_ratio = built["divide"]["lut4"] / built["normalise"]["lut4"]
    return lines + ["", f"The float exp costs {exp_ratio:.1f}x the LUTs of the table exp, and "
                    f"the divider {divide_ratio:.1f}x those of the multiply that replaces it; "
                    "the reciprocal is paid once per row.", ""]


def _fidelity_section() -> list:
    path = REPORT / "fidelity.json"
    if not path.exists():
        return ["No golden-model fidelity yet: run `make fidelity`.", ""]
    f = json.loads(path.read_text())
    a, m = f["approximations"], f["model"]
    lines = ["## Golden model fidelity (`make fidelity`)", "",
             "| approximation | max error over the whole input range | target |",
             "|---|---|---|",
             f"| GELU (every ACT code) | {a['gelu_max_error']:.5f} | 2^-8 = 0.00391 "
             f"(I-BERT i-GELU: {a['i_gelu_max_error']:.4f}) |",
             f"| softmax, rows of 1 to {len(a['softmax_max_error_by_length'])} | "
             f"{a['softmax_max_error']:.2e} | 2^-10 = 9.8e-4 |",
             f"| exp (base 2 with table) | {a['exp_max_error']:.2e} | |",
             f"| reciprocal (relative) | {a['reciprocal_max_relative_error']:.2e} | |",
             f"| rsqrt (relative) | {a['rsqrt_max_relative_error']:.2e} | |",
             "", "![approximation errors](approximations.png)", "",
             f"Tiny model, float against integer on {m['images']} test images:", "",
             "| task | metric | float | integer | SQNR per block output (dB) |",
             "|---|---|---|---|---|"]
    for task, t in m["tasks"].items():
        sqnr = ", ".join(f"{v:.1f}" for v in t["sqnr_db"].values())
        lines.append(f"| {task} | {t['metric']} | {100 * t['float']:.2f} % | "
                     f"{100 * t['integer']:.2f} % | {sqnr} |")
    sweep = m["sweep"]
    lines += ["", "Activation width sweep (8 integer bits; task 0 accuracy / task 1 patch "
              "accuracy):", "", "| bits | " + " | ".join(sweep) + " |",
              "|---" * (len(sweep) + 1) + "|",
              "| task 0 | " + " | ".join(f"{100 * v['0']:.1f}" for v in sweep.values()) + " |",
              "| task 1 | " + " | ".join(f"{100 * v['1']:.1f}" for v in sweep.values()) + " |",
              "", "![fidelity](fidelity.png)", ""]
    return lines


def _bench_section() -> list:
    path = REPORT / "bench.json"
    if not path.exists():
        return []
    b = json.loads(path.read_text())
    lines = ["## Benchmarks (`make bench`)", ""]
    if "golden" in b:
        g = b["golden"]
        lines += [f"Integer model: {g['tiny_seconds_per_image'] * 1000:.1f} ms per tiny image "
                  f"(both tasks averaged), {g['m3vit_tiny_trace_seconds']:.2f} s for one "
                  "m3vit-tiny image with its full trace (random weights).", ""]
    return lines


def _results() -> dict:
    """Every unit result with a breakdown saved by `make bench` and `make sim` (the later
    run of the two wins), by name."""
    runs = [json.loads(p.read_text()) for p in (REPORT / "bench.json", REPORT / "summary.json")
            if p.exists()]
    found = {}
    for saved in sorted(runs, key=lambda r: r.get("written", 0)):
        for name, result in {**saved.get("units", {}), **saved.get("variants", {})}.items():
            if "breakdown" in result:
                found[name] = result
    return found


def _bars(groups: dict, ylabel: str, title: str, path, line: float | None = None):
    """Grouped bars: ``groups`` maps a series name to ``{label: value}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(next(iter(groups.values())))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(groups)
    for k, (series, values) in enumerate(groups.items()):
        ax.bar([i + k * width for i in range(len(labels))], [values[x] for x in labels],
               width, label=series)
    if line is not None:
        ax.axhline(line, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(labels))], labels,
                  rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _linear_section() -> list:
    """MAC utilisation of the linear unit per layer: useful MACs / (tile * cycles)."""
    results = _results()
    sets = {"ecp5-85f": results.get("linear"), "edge-moe": results.get("linear_edge_moe")}
    sets = {k: v for k, v in sets.items() if v and "breakdown" in v}
    if not sets:
        return []
    layers = list(next(iter(sets.values()))["breakdown"])
    lines = ["## Linear unit: MAC utilisation per layer (`make sim`, `make bench`)", "",
             "| layer | " + " | ".join(f"{k} cycles | {k} utilisation" for k in sets) + " |",
             "|---" * (1 + 2 * len(sets)) + "|"]
    for layer in layers:
        cells = [f"{r['breakdown'][layer]['cycles']} | "
                 f"{100 * r['breakdown'][layer]['utilisation']:.1f} %"
                 for r in sets.values() if layer in r["breakdown"]]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    big = [x for x in layers if x.startswith("m3vit-tiny")]
    if big:
        groups = {k: {x.split(".")[1]: 100 * r["breakdown"][x]["utilisation"] for x in big}
                  for k, r in sets.items() if all(x in r["breakdown"] for x in big)}
        _bars(groups, "MAC utilisation (%)", "Linear unit on m3vit-tiny's layers",
              REPORT / "linear_utilisation.png", line=90)
        lines += ["", "![linear unit utilisation](linear_utilisation.png)"]
    lines += ["", "Each layer runs alone from its first input to its last output, so the first "
              "weight tile's load and the pipeline's fill are counted. The heads (head0: one "
              "token; head1: 11 outputs on a 16- or 8-wide tile) are outside M³ViT's FPGA "
              "kernel and are shown for completeness.", ""]
    return lines


def _attention_section() -> list:
    """The attention unit's traffic per key step against its parallelism P."""
    results = _results()
    sweep = {int(n.removeprefix("attention_p")): r for n, r in results.items()
             if n.startswith("attention_p") and "breakdown" in r}
    if not sweep:
        return []
    config = "m3vit-tiny"
    lines = ["## Attention reordering: traffic per key step against P (`make bench`)", "",
             f"{config}, all three heads, chunk width of the ecp5-85f set. Rows are "
             "head_dim values of 2 bytes.", "",
             "| P | cycles | key steps | bytes per step | peak rows per step (q, k, v, out) "
             "| bytes per cycle | without reordering: peak q rows per step |",
             "|---|---|---|---|---|---|---|"]
    rows = {}
    for p in sorted(sweep):
        b = sweep[p]["breakdown"][config]
        t = b["traffic"]
        peaks = ", ".join(f"{t[n]['peak_rows_per_step']:g}" for n in ("q", "k", "v", "o"))
        per_cycle = t["bytes_per_step"] * b["steps"] / b["cycles"]
        rows[p] = (b["cycles"], t["bytes_per_step"], per_cycle,
                   max(t[n]["peak_rows_per_step"] for n in ("q", "o")))
        lines.append(f"| {p} | {b['cycles']} | {b['steps']} | {t['bytes_per_step']:.1f} | "
                     f"{peaks} | {per_cycle:.2f} | {p} |")
    _plot_attention(rows, REPORT / "attention_bandwidth.png")
    lines += ["", "![attention traffic against P](attention_bandwidth.png)", "",
              "With reordering each key step reads one key row, one value row and at most one "
              "query row, and writes at most one finished row, whatever P; the cycles fall "
              "as 1/P. Without it (every query of a block starting at key 0), a block's first "
              "step needs all P query rows at once: the last column, from the schedule.", ""]
    return lines


def _plot_attention(rows: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = sorted(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    left.plot(ps, [rows[p][3] for p in ps], "o-", label="measured, reordered")
    left.plot(ps, ps, "s--", label="without reordering")
    left.set_xlabel("parallelism P")
    left.set_ylabel("peak q/out rows per key step")
    left.legend()
    right.plot(ps, [rows[p][1] for p in ps], "o-", label="bytes per key step")
    right.plot(ps, [rows[p][2] for p in ps], "s-", label="bytes per cycle")
    right.set_xlabel("parallelism P")
    twin = right.twinx()
    twin.plot(ps, [rows[p][0] / 1e3 for p in ps], "^:", color="grey", label="kcycles")
    twin.set_ylabel("kcycles (grey)")
    right.legend(loc="center right")
    fig.suptitle("Attention unit: constant traffic per step, cycles falling with P")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@main
def run(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(f"wrote {write()}")


if __name__ == "__main__":
    run()
