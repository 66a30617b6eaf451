"""make optics: ConvShareViT through the simulated 4f system, and the throughput model.

Runs the shipped ConvShareViT checkpoints (valid and same) with every shared convolution on
`pyref.optics`: ideal, then across SLM and camera bits and camera photon counts (homodyne
detection), and at 8 bits with direct detection for comparison. Then times
the same layers on the 4f system, a GPU and our FPGA (`pyref.optics_perf`). Writes
build/report/optics.json and plots; `make report` shows them.
"""

import argparse
import json
import time

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pyref import data, optics_perf
from pyref.config import ConfigError, get_hw_config
from pyref.convsharevit import CONFIGS, ConvShareConfig, ConvShareViT, predict, use_optics
from pyref.model import load_checkpoint
from scripts.bench import accelerator_clock
from scripts.common import REPORT, main, make_console, seed_argument

#: SLM and camera bits swept (both the same), with the default camera noise.
BITS = (4, 5, 6, 8, 10)
#: Camera full-well electrons swept at 8-bit SLM and camera (shot noise ~ 1/sqrt).
FULL_WELLS = (30.0, 100.0, 300.0, 1000.0, 10_000.0, 100_000.0)
#: 8-bit SLM and camera with no noise: quantisation alone.
NOISELESS = {"slm_bits": 8, "camera_bits": 8, "read_noise": 0.0, "full_well": 1e12}
#: Direct detection (no reference wave): the camera's square root, with and without noise.
DIRECT = {"detection": "direct"}
#: Batches of the throughput model.
BATCHES = (1, 64, 1024)
#: SLM resolutions of the sensitivity sweep.
RESOLUTIONS = ((512, 512), (1080, 1920), (2160, 3840))
#: ConvShareViT at ViT-B/16's size (224x224 RGB), for the throughput model only.
VIT_B = ConvShareConfig("convshare-vit-b", "valid", image=(224, 224, 3), patch=16, dim=768,
                        depth=12, heads=12, mlp=3072, dim_map=(24, 32), mlp_map=(48, 64))
#: The paper's claimed speed-up over a GPU.
PAPER_SPEEDUP = 3.04


def load(name: str) -> ConvShareViT:
    return load_checkpoint(CONFIGS[name], build=ConvShareViT,
                           train="make train-convshare").double()


def accuracy_runs(images: int, seed: int, console) -> dict:
    """Digital, ideal-optics and non-ideal accuracies of every shipped config."""
    test = data.load(CONFIGS["convshare-valid"], "test").subset(slice(0, images))
    variants = [n for n, c in CONFIGS.items() if c.mixer != "linear"]
    runs = [("ideal", {})] + [(f"bits {b}", {"slm_bits": b, "camera_bits": b}) for b in BITS]
    runs += [(f"full well {w:g}", {"full_well": w}) for w in FULL_WELLS]
    runs += [("bits 8, no noise", NOISELESS), ("direct, bits 8", DIRECT),
             ("direct, bits 8, no noise", {**NOISELESS, **DIRECT})]
    out = {name: {"digital": float((predict(load(name), test) == test.labels).mean())}
           for name in CONFIGS}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("optical inference", total=len(variants) * len(runs))
        for name in variants:
            digital = predict(load(name), test)
            for label, device in runs:
                progress.update(bar, description=f"{name}: {label}")
                model = use_optics(load(name), ideal=label == "ideal", seed=seed, **device)
                predicted = predict(model, test)
                out[name][label] = float((predicted == test.labels).mean())
                if label == "ideal":
                    out[name]["ideal_changed_predictions"] = int((predicted != digital).sum())
                progress.advance(bar)
    return {"images": images, "bits": BITS, "full_wells": FULL_WELLS, "accuracy": out}


def throughput() -> dict:
    mhz, clock = accelerator_clock()
    hw = get_hw_config("ecp5-85f")
    fpga = optics_perf.Fpga(f"ECP5 ecp5-85f at {mhz:.1f} MHz", hw.peak_macs_per_cycle,
                            mhz * 1e6, optics_perf.FPGA_UTILISATION, optics_perf.FPGA_WATTS)
    rates = np.logspace(1, 8, 57)
    out = {"sources": optics_perf.SOURCES, "fpga_clock": clock, "rates": rates.tolist(),
           "models": {}}
    for config in [c for c in CONFIGS.values() if c.mixer != "linear"] + [VIT_B]:
        out["models"][config.name] = {
            "compare": {b: optics_perf.compare(config, b, fpga) for b in BATCHES},
            "rate_for_paper_speedup": {
                f"{r[0]}x{r[1]}": {b: optics_perf.rate_for_speedup(config, b, r, PAPER_SPEEDUP)
                                   for b in BATCHES} for r in RESOLUTIONS},
            "sweep_batch64": optics_perf.sweep(config, 64, rates, RESOLUTIONS)}
    return out


def print_tables(result: dict, console):
    table = Table(title=f"ConvShareViT accuracy, {result['optics']['images']} test images")
    runs = list(next(iter(result["optics"]["accuracy"].values())))
    runs = [r for r in runs if r != "ideal_changed_predictions"]
    table.add_column("config")
    for r in runs:
        table.add_column(r, justify="right")
    for name, acc in result["optics"]["accuracy"].items():
        table.add_row(name, *[f"{100 * acc[r]:.1f}" if r in acc else "" for r in runs])
    console.print(table)
    for name, model in result["throughput"]["models"].items():
        table = Table(title=f"{name}: shared convolutions per image, batch 64")
        for column in ("platform", "images/s", "J/image", "vs GPU", "vs FPGA"):
            table.add_column(column, justify="right")
        for row in model["compare"][64]:
            table.add_row(row["platform"], f"{row['images_per_s']:.3g}",
                          f"{row['joules']:.3g}", f"{row['speedup_vs_gpu']:.3g}",
                          f"{row['speedup_vs_fpga']:.3g}")
        console.print(table)


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--images", type=int, default=1000,
                        help="test images per accuracy run (at most 1000)")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= data.TEST_IMAGES:
        raise ConfigError(f"--images must be 1..{data.TEST_IMAGES}")
    torch.set_num_threads(2)
    console = make_console()
    start = time.monotonic()
    result = {"seed": args.seed, "optics": accuracy_runs(args.images, args.seed, console),
              "throughput": throughput()}
    result["seconds"] = round(time.monotonic() - start, 1)
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "optics.json").write_text(json.dumps(result, indent=1) + "\n")
    print_tables(result, console)
    from scripts import report

    console.print(f"wrote {REPORT / 'optics.json'} and {report.write()} "
                  f"({result['seconds']:.0f} s)")


if __name__ == "__main__":
    run()
