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
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    units = summary.get("units")
    if units:
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
    lines += _model_section(summary.get("model") if summary_path.exists() else None)
    lines += _projection_section()
    lines += _fidelity_section()
    lines += _bench_section()
    lines += _optics_section()
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
    comparison = _comparison(summary.get("model"))
    lines += _comparison_section(comparison)
    (REPORT / "report.json").write_text(json.dumps({
        "implementation": {p.parent.name: json.loads(p.read_text()) for p in reports},
        "comparison": comparison}, indent=2) + "\n")
    path = REPORT / "report.md"
    path.write_text("\n".join(lines))
    return str(path)


#: Edge-MoE as published (../shared/DESIGN.md): its MAC array and clock on the ZCU102.
EDGE_MOE_PAPER = {"macs_per_cycle": 256, "mhz": 300.0}


def _comparison(model: dict | None) -> list:
    """Our ECP5 design and the edge-moe set against Edge-MoE, from saved results: the
    board's bitstream report, `make sim`'s tiny run and `make bench`'s m3vit-tiny runs and
    projections. Achieved GOPS count two operations per useful multiply-accumulate."""
    from pyref.config import get_hw_config

    board_path = BITSTREAM / "ulx3s" / "report.json"
    board = json.loads(board_path.read_text()) if board_path.exists() else None
    bench_path = REPORT / "bench.json"
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else {}
    # Reports from before the set was recorded pair with nothing.
    board_hw = board.get("params", {}).get("hw") if board else None
    rows = []

    def add(design, config, source, hw, cycles, utilisation, bytes_per_image, mhz,
            dsp_used):
        peak = get_hw_config(hw).peak_macs_per_cycle
        fps = mhz * 1e6 / cycles
        gops = 2 * utilisation * peak * mhz / 1e3
        rows.append({"design": design, "config": config, "source": source,
                     "macs_per_cycle": peak, "mac_utilisation": utilisation,
                     "bytes_per_image": round(bytes_per_image), "mhz": mhz, "fps": fps,
                     "gops": gops, "gops_per_mac_multiplier": gops / peak,
                     "dsp_used": dsp_used,
                     "gops_per_dsp_used": gops / dsp_used if dsp_used else None})

    if board_hw and model and model["hw"] == board_hw:
        add(f"lumoe {model['hw']} on the ULX3S", model["config"],
            "RTL (`make sim`) at the board's Fmax (`make bitstream`)", model["hw"],
            model["cycles_per_image"], model["mac_utilisation"], model["bytes_per_image"],
            board["fmax_mhz"], board["dsp"])
    for key in ("ecp5-85f-m3vit", "edge-moe"):
        tasks = [p for p in bench.get("projection", {}).values() if p["hw"] == key]
        if not tasks:
            continue
        mean = {k: sum(p[k] for p in tasks) / len(tasks)
                for k in ("cycles", "mac_utilisation", "bytes_per_image")}
        # The board's compute runs at the board's latest measured clock.
        on_board = (board_hw is not None
                    and get_hw_config(key).compute == get_hw_config(board_hw).compute)
        clock = "the board's Fmax" if on_board else tasks[0]["clock"]
        add(f"lumoe {key}", "m3vit-tiny", f"cycle model (`make bench`), {clock}", key,
            mean["cycles"], mean["mac_utilisation"], mean["bytes_per_image"],
            board["fmax_mhz"] if on_board else tasks[0]["mhz"],
            board["dsp"] if on_board else None)
    run = bench.get("models", {}).get("top_m3vit")
    if run:
        add(f"lumoe {run['hw']}", run["config"], "RTL, cycle-simulated (`make bench`), 300 MHz",
            run["hw"], run["cycles_per_image"], run["mac_utilisation"],
            run["bytes_per_image"], EDGE_MOE_PAPER["mhz"], None)
    return rows


def _comparison_section(rows: list) -> list:
    if not rows:
        return []
    lines = ["## Against Edge-MoE (`make bitstream`, `make sim`, `make bench`)", "",
             "| design | model | from | MACs per cycle | MAC utilisation | bytes per image | "
             "clock (MHz) | FPS | GOPS | GOPS per MAC multiplier | GOPS per DSP used |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_dsp = (f"{r['gops_per_dsp_used']:.3f} ({r['dsp_used']} DSP)"
                   if r["gops_per_dsp_used"] else "-")
        lines.append(f"| {r['design']} | {r['config']} | {r['source']} | "
                     f"{r['macs_per_cycle']} | {100 * r['mac_utilisation']:.1f} % | "
                     f"{r['bytes_per_image']:,} | {r['mhz']:.1f} | {r['fps']:,.2f} | "
                     f"{r['gops']:.2f} | {r['gops_per_mac_multiplier']:.3f} | {per_dsp} |")
    paper = EDGE_MOE_PAPER
    lines.append(f"| Edge-MoE (ZCU102) | m3vit-tiny | published configuration | "
                 f"{paper['macs_per_cycle']} | - | - | {paper['mhz']:.0f} | - | "
                 f"{2 * paper['macs_per_cycle'] * paper['mhz'] / 1e3:.1f} peak | "
                 f"{2 * paper['mhz'] / 1e3:.3f} peak | - |")
    return lines + ["", "GOPS count two operations per useful multiply-accumulate of the "
                    "linear unit (padding not counted). A MAC multiplier is one lane of the "
                    "linear unit's tile; DSP used counts every MULT18X18D the board's "
                    "bitstream places (attention, LayerNorm, softmax and MoE included). "
                    "Edge-MoE's measured FPS, utilisation and DSP count are not in any source "
                    "available offline, so only its peak is given.", ""]


def _model_section(model: dict | None) -> list:
    """The whole accelerator end to end: `make sim`'s run, per layer against the cycle
    model and the compute-bound ideal, with the experts used and the logits' error."""
    if not model:
        return ["No end-to-end run yet: run `make sim`.", ""]
    lines = [f"## Whole accelerator end to end (`make sim`): {model['config']} on "
             f"{model['hw']}, {model['images']} images x {model['tasks']} tasks", "",
             "| task | mismatches | cycles per image | ideal | bytes per image | "
             "accuracy, RTL | accuracy, integer model |",
             "|---|---|---|---|---|---|---|"]
    for task, layers in model["layers"].items():
        metric = model["metrics"].get(task, {})
        cycles = sum(e["cycles"] for e in layers.values())
        ideal = sum(e["ideal"] for e in layers.values())
        accuracy = " | ".join(f"{metric[k]:.3f}" if k in metric else "-"
                              for k in ("rtl", "intmodel"))
        lines.append(f"| {task} | {model['mismatches']} | {cycles:,.0f} | {ideal:,.0f} | "
                     f"{model['bytes_per_image']:,} | {accuracy} |")
    lines += ["", f"The linear unit does {100 * model['mac_utilisation']:.1f} % of its peak in "
              "useful multiply-accumulates over the whole run (padding not counted). Every "
              "logit is compared with the integer model's, and the bytes the memory port moves "
              "with the functional model's (`pyref.machine`).", ""]
    task = next(iter(model["layers"]))
    layers = model["layers"][task]
    lines += [f"Per layer, task {task} (mean over the images): RTL cycles from the end of the "
              "layer before to the end of this one's last write, the cycle model "
              "(`pyref.perf`) and the units' compute-bound ideal.", "",
              "| layer | RTL cycles | model | model error | ideal | MAC utilisation (padded) |",
              "|---|---|---|---|---|---|"]
    for name, e in layers.items():
        utilisation = e["macs"] / (_peak(model) * e["cycles"]) if e["macs"] else 0
        lines.append(f"| {name} | {e['cycles']:,.0f} | {e['model']:,.0f} | "
                     f"{100 * (e['model'] - e['cycles']) / e['cycles']:+.1f} % | "
                     f"{e['ideal']:,.0f} | {100 * utilisation:.1f} % |")
    worst = max(abs(e["model"] - e["cycles"]) / e["cycles"] for t in model["layers"].values()
                for e in t.values())
    lines += ["", f"Largest cycle-model error over every layer of both tasks: "
              f"{100 * worst:.1f} %.", ""]
    _plot_layers(layers, _peak(model), REPORT / "layer_cycles.png")
    _plot_experts(model["expert_tokens"], REPORT / "expert_use.png")
    _plot_errors(model["logit_error"], REPORT / "logit_error.png")
    lines += ["![cycles per layer](layer_cycles.png)", "",
              "![tokens per expert, per task](expert_use.png)", "",
              "![integer model against float](logit_error.png)", ""]
    errors = model["logit_error"]
    lines += ["Integer model against float on the same inputs, logits: " + "; ".join(
        f"task {t}: max |error| {e['max_abs']:.3f}, rms {e['rms']:.3f}"
        for t, e in errors.items()) + ".", ""]
    return lines


def _projection_section() -> list:
    """`make bench`'s end-to-end runs and the cycle model's projection of m3vit-tiny."""
    path = REPORT / "bench.json"
    bench = json.loads(path.read_text()) if path.exists() else {}
    if "projection" not in bench:
        return ["No m3vit-tiny projection yet: run `make bench`.", ""]
    lines = ["## m3vit-tiny end to end (`make bench`)", "",
             "| run | config | set | images x tasks | mismatches | cycles per image | "
             "largest cycle-model error |", "|---|---|---|---|---|---|---|"]
    for name, m in bench.get("models", {}).items():
        errors = [abs(e["model"] - e["cycles"]) / e["cycles"]
                  for t in m["layers"].values() for e in t.values()]
        depth = f" ({len([n for n in next(iter(m['layers'].values())) if n.endswith('ln1')])}"
        lines.append(f"| {name} | {m['config']}{depth} blocks) | {m['hw']} | "
                     f"{m['images']} x {m['tasks']} | {m['mismatches']} | "
                     f"{m['cycles_per_image']:,} | {100 * max(errors):.1f} % |")
    lines += ["", "Projected with the cycle model (`pyref.perf`) on the functional model's run "
              "of one random-weight m3vit-tiny image:", "",
              "| set | task | clock (MHz) | cycles | FPS | compute-bound FPS | of the limit | "
              "linear-unit MAC utilisation | MB per image |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in bench["projection"].values():
        lines.append(f"| {p['hw']} | {p['task']} | {p['mhz']:.1f} ({p['clock']}) | "
                     f"{p['cycles']:,} | {p['fps']:.1f} | {p['limit_fps']:.1f} | "
                     f"{100 * p['of_limit']:.1f} % | {100 * p['mac_utilisation']:.1f} % | "
                     f"{p['bytes_per_image'] / 1e6:.1f} |")
    return lines + ["", "The compute-bound limit runs every unit at its ideal rate with nothing "
                    "in between (no memory stalls, no pipeline fill, no controller). The "
                    "`edge-moe` set is Edge-MoE's published configuration (256 MACs per cycle, "
                    "P = 4, 300 MHz); Edge-MoE's own measured FPS is not in any source available "
                    "offline, so it is not quoted.", ""]


def _peak(model: dict) -> int:
    from pyref.config import get_hw_config

    return get_hw_config(model["hw"]).peak_macs_per_cycle


def _plot_layers(layers: dict, peak: int, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(layers)
    x = range(len(names))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    width = 0.28
    for k, (key, label) in enumerate((("cycles", "RTL"), ("model", "cycle model"),
                                      ("ideal", "compute-bound ideal"))):
        top.bar([i + (k - 1) * width for i in x], [layers[n][key] for n in names], width,
                label=label)
    top.set_ylabel("cycles")
    top.legend()
    top.set_title("Cycles per layer")
    bottom.bar(x, [100 * layers[n]["macs"] / (peak * layers[n]["cycles"]) for n in names])
    bottom.set_ylabel("linear-unit MAC utilisation (%)")
    bottom.set_xticks(list(x), names, rotation=70, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_experts(use: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sorted({layer for per_task in use.values() for layer in per_task})
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        width = 0.8 / len(use)
        for k, (task, per_task) in enumerate(use.items()):
            counts = per_task[layer]
            ax.bar([e + k * width for e in range(len(counts))], counts, width,
                   label=f"task {task}")
        ax.set_title(layer)
        ax.set_xlabel("expert")
        ax.set_ylabel("tokens routed")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_errors(errors: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for task, e in errors.items():
        ax.stairs(e["histogram"], e["edges"], label=f"task {task}")
    ax.set_xlabel("integer logit - float logit")
    ax.set_ylabel("logits")
    ax.set_title("Integer model against float, end to end")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def _optics_section() -> list:
    """`make optics`: ConvShareViT through the 4f model, and the throughput model."""
    path = REPORT / "optics.json"
    if not path.exists():
        return ["No optics results yet: run `make optics`.", ""]
    result = json.loads(path.read_text())
    acc = result["optics"]["accuracy"]
    runs = [r for r in next(iter(acc.values())) if r != "ideal_changed_predictions"]
    lines = [f"## ConvShareViT on the 4f model (`make optics`, SEED={result['seed']})", "",
             f"Test accuracy (%) on {result['optics']['images']} images; bits are the SLM's "
             "and the camera's, full well in electrons (8-bit SLM and camera). Homodyne "
             "detection unless the run says direct.", "",
             "| config | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for name, a in acc.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * a[r]:.1f}" if r in a else "-"
                                              for r in runs) + " |")
    changed = {n: a["ideal_changed_predictions"] for n, a in acc.items()
               if "ideal_changed_predictions" in a}
    lines += ["", "Predictions changed by ideal optics against digital: "
              + ", ".join(f"{n} {c}" for n, c in changed.items()) + ".", ""]
    _plot_optics_accuracy(result["optics"], REPORT / "optics_accuracy.png")
    lines += ["![accuracy against bits and photons](optics_accuracy.png)", "",
              "### Shared convolutions per image: optics, GPU, FPGA (batch 64)", "",
              "| model | platform | images/s | J/image | speed-up over GPU | over FPGA |",
              "|---|---|---|---|---|---|"]
    models = result["throughput"]["models"]
    for name, model in models.items():
        for row in model["compare"]["64"]:
            lines.append(f"| {name} | {row['platform']} | {row['images_per_s']:.3g} | "
                         f"{row['joules']:.3g} | {row['speedup_vs_gpu']:.3g} | "
                         f"{row['speedup_vs_fpga']:.3g} |")
    lines += ["", "SLM frame rate at which the optics reach the paper's 3.04x over the GPU:",
              "", "| model | SLM | batch 1 | batch 64 | batch 1024 |", "|---|---|---|---|---|"]
    for name, model in models.items():
        for resolution, rates in model["rate_for_paper_speedup"].items():
            lines.append(f"| {name} | {resolution} | " + " | ".join(
                f"{rates[b] / 1e3:,.0f} kHz" for b in ("1", "64", "1024")) + " |")
    _plot_speedup(result["throughput"], REPORT / "optics_speedup.png")
    lines += ["", "![speed-up against SLM frame rate](optics_speedup.png)", "",
              "Device numbers and their sources:", ""]
    lines += [f"* {k}: {v}" for k, v in result["throughput"]["sources"].items()]
    return lines + [""]


def _plot_optics_accuracy(optics: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for name, a in optics["accuracy"].items():
        if "ideal" not in a:
            continue
        left.plot(optics["bits"], [100 * a[f"bits {b}"] for b in optics["bits"]], "o-",
                  label=name)
        right.semilogx(optics["full_wells"],
                       [100 * a[f"full well {w:g}"] for w in optics["full_wells"]], "o-",
                       label=name)
        colour = left.lines[-1].get_color()
        if "direct, bits 8" in a:  # optics.json from before the detection comparison
            left.plot([8], [100 * a["direct, bits 8"]], "s", fillstyle="none", color=colour,
                      label=f"{name}, direct detection")
        for ax in (left, right):
            ax.axhline(100 * a["digital"], linestyle="--", linewidth=1, color=colour)
    left.set_xlabel("SLM and camera bits (homodyne; squares: direct)")
    right.set_xlabel("camera full well (electrons), 8-bit SLM and camera")
    left.set_ylabel("test accuracy (%)")
    left.legend()
    left.set_title("dashed: digital")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_speedup(throughput: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    rates = throughput["rates"]
    for name, model in throughput["models"].items():
        for resolution, speedups in model["sweep_batch64"].items():
            ax.loglog(rates, speedups, label=f"{name}, {resolution}")
    ax.axhline(3.04, color="black", linestyle="--", linewidth=1, label="paper: 3.04x")
    ax.axhline(1, color="grey", linewidth=1)
    ax.set_xlabel("SLM, mask and camera frame rate (Hz)")
    ax.set_ylabel("speed-up over the GPU, batch 64")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    runs = [results.get("linear"), results.get("linear_edge_moe")]
    sets = {r["params"]["hw"]: r for r in runs if r and "breakdown" in r and "params" in r}
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
             if n.startswith("attention_p") and "breakdown" in r and "params" in r}
    if not sweep:
        return []
    config = "m3vit-tiny"
    lines = ["## Attention reordering: traffic per key step against P (`make bench`)", "",
             f"{config}, all three heads, chunk width of the "
             f"{sweep[min(sweep)]['params']['hw']} set. Rows are "
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
