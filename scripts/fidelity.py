"""make fidelity: how close the integer golden model is to float math, measured.

Writes build/report/fidelity.json and plots: the approximations' errors over their whole
input range, the tiny model's task metrics in float and integer form, per-layer SQNR, and
a sweep of the activation width (10 to 20 bits) against accuracy.
"""

import argparse
import json
import math
import time

import numpy as np
import torch
from rich.table import Table

from pyref import approx, data, metrics, vectors
from pyref.config import get_config
from pyref.formats import ACT, PROB, QFormat
from pyref.intmodel import IntModel
from pyref.model import load_checkpoint, parameters
from scripts.common import REPORT, main, make_console

#: Integer bits (sign included) kept by every activation width in the sweep.
ACT_INTEGER_BITS = ACT.bits - ACT.frac


def i_gelu(x: np.ndarray) -> np.ndarray:
    """I-BERT's i-GELU in float (its second-order erf polynomial), for comparison."""
    a, b = -0.2888, -1.769
    u = x / math.sqrt(2)
    erf = np.sign(u) * (a * (np.minimum(np.abs(u), -b) + b) ** 2 + 1)
    return x * 0.5 * (1 + erf)


def approximation_errors() -> dict:
    """Max |error| of every table approximation against float64, over its whole range."""
    x = np.arange(ACT.min_code, ACT.max_code + 1)
    real = ACT.dequantise(x)
    exact = real * 0.5 * (1 + np.vectorize(math.erf)(real / math.sqrt(2)))
    gelu_error = np.abs(ACT.dequantise(approx.gelu_fixed(x)) - exact)
    i_gelu_error = np.abs(i_gelu(real) - exact)
    near = np.abs(real) <= 8  # past |x| = 8 both are plain ReLU
    rng = np.random.default_rng(0)
    softmax_by_length = []
    for n in range(1, vectors.SOFTMAX_MAX_ROW + 1):
        rows = np.stack([ACT.random(rng, n), ACT.random(rng, n) // 256, np.full(n, 1000),
                         np.where(np.arange(n) == 0, ACT.max_code, ACT.min_code)])
        f = ACT.dequantise(rows)
        ref = np.exp(f - f.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        softmax_by_length.append(float(np.abs(PROB.dequantise(approx.softmax_fixed(rows))
                                              - ref).max()))
    v = np.unique(np.geomspace(1, 2**46, 100_000).astype(np.int64))
    r, e = approx.reciprocal(v)
    rs, es = approx.rsqrt(v)
    d = np.arange(-(1 << 16) + 1, 1)
    return {
        "gelu_max_error": float(gelu_error.max()),
        "gelu_error_curve": {"x": real[near].tolist(), "error": gelu_error[near].tolist(),
                             "i_gelu_error": i_gelu_error[near].tolist()},
        "i_gelu_max_error": float(i_gelu_error.max()),
        "softmax_max_error": max(softmax_by_length),
        "softmax_max_error_by_length": softmax_by_length,
        "exp_max_error": float(np.abs(PROB.dequantise(approx.exp_fixed(d))
                                      - np.exp(ACT.dequantise(d))).max()),
        "reciprocal_max_relative_error": float(np.abs(r * 2.0 ** -(16 + e) * v - 1).max()),
        "rsqrt_max_relative_error": float(np.abs(rs * 2.0 ** -(16 + es) * np.sqrt(v) - 1).max()),
    }


def sqnr_db(reference: np.ndarray, approximation: np.ndarray) -> float:
    noise = ((reference - approximation) ** 2).sum()
    return float(10 * np.log10((reference**2).sum() / noise)) if noise else math.inf


def model_fidelity(images: int, sweep_images: int) -> dict:
    config = get_config("tiny")
    model = load_checkpoint(config)
    state = parameters(model)
    test = data.load(config, "test").subset(slice(0, images))
    patches = data.patchify(test.images, config.patch)
    labels = (test.labels, test.patch_labels)
    integer = IntModel(config, state)
    codes = integer.quantise_input(patches)
    result = {"images": len(test), "tasks": {}, "sweep": {}}
    for task in range(config.tasks):
        float_trace, int_trace = {}, {}
        with torch.no_grad():
            float_logits, _ = model(torch.from_numpy(patches), task, float_trace)
        int_logits, _ = integer.forward(codes, task, int_trace)
        result["tasks"][task] = {
            "metric": metrics.TASK_METRICS[task],
            "float": metrics.task_metric(task, float_logits.numpy(), *labels),
            "integer": metrics.task_metric(task, ACT.dequantise(int_logits), *labels),
            "sqnr_db": {f"block{layer}": sqnr_db(float_trace[f"blocks.{layer}.out"].numpy(),
                                                 ACT.dequantise(int_trace[f"blocks.{layer}.out"]))
                        for layer in range(config.depth)},
        }
    sweep_split = test.subset(slice(0, sweep_images))
    sweep_patches = data.patchify(sweep_split.images, config.patch)
    for bits in range(10, 21):
        act = QFormat(bits, bits - ACT_INTEGER_BITS)
        swept = IntModel(config, state, act=act)
        swept_codes = swept.quantise_input(sweep_patches)
        result["sweep"][bits] = {
            task: metrics.task_metric(task, act.dequantise(swept.forward(swept_codes, task)[0]),
                                      sweep_split.labels, sweep_split.patch_labels)
            for task in range(config.tasks)}
    return result


def plot(fidelity: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = fidelity["approximations"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    curve = a["gelu_error_curve"]
    left.semilogy(curve["x"], curve["i_gelu_error"], linewidth=0.8, color="grey",
                  label="I-BERT i-GELU (float)")
    left.semilogy(curve["x"], np.maximum(curve["error"], 1e-7), linewidth=0.8,
                  label="lumoe (table, ACT codes)")
    left.axhline(2**-8, color="red", linestyle="--", linewidth=1, label="target 2^-8")
    left.set_ylim(1e-6, 0.1)  # exact zeros (ReLU region) sit at the bottom edge
    left.set_xlabel("x")
    left.set_ylabel("|GELU error|")
    left.set_title("GELU against erf, every ACT code in [-8, 8]")
    left.legend()
    right.semilogy(range(1, len(a["softmax_max_error_by_length"]) + 1),
                   a["softmax_max_error_by_length"], linewidth=0.8)
    right.axhline(2**-10, color="red", linestyle="--", linewidth=1, label="target 2^-10")
    right.set_xlabel("row length")
    right.set_ylabel("max |probability error|")
    right.set_title("Single-pass softmax against float64")
    right.legend()
    fig.tight_layout()
    fig.savefig(REPORT / "approximations.png", dpi=120)
    plt.close(fig)

    m = fidelity["model"]
    sweep = m["sweep"]
    bits = sorted(sweep, key=int)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    for task, label in ((0, "task 0 accuracy"), (1, "task 1 patch accuracy")):
        left.plot([int(b) for b in bits], [100 * sweep[b][task] for b in bits], marker="o",
                  label=label)
        left.axhline(100 * m["tasks"][task]["float"], linestyle=":", linewidth=1)
    left.axvline(ACT.bits, color="grey", linestyle="--", linewidth=1, label=f"ACT = {ACT}")
    left.set_xlabel("activation bits (8 integer bits)")
    left.set_ylabel("% (dotted: float)")
    left.set_title("Activation width sweep")
    left.legend()
    for task in (0, 1):
        sqnr = m["tasks"][task]["sqnr_db"]
        right.plot(list(sqnr), list(sqnr.values()), marker="o", label=f"task {task}")
    right.set_ylabel("SQNR (dB)")
    right.set_title("Integer against float, block outputs")
    right.legend()
    fig.tight_layout()
    fig.savefig(REPORT / "fidelity.png", dpi=120)
    plt.close(fig)


def measure(images: int, sweep_images: int) -> dict:
    start = time.monotonic()
    fidelity = {"approximations": approximation_errors(),
                "model": model_fidelity(images, sweep_images)}
    fidelity["seconds"] = round(time.monotonic() - start, 1)
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "fidelity.json").write_text(json.dumps(fidelity, indent=2) + "\n")
    plot(fidelity)
    return fidelity


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=data.TEST_IMAGES,
                        help="test images for the float/integer comparison")
    parser.add_argument("--sweep-images", type=int, default=500,
                        help="test images per point of the width sweep")
    args = parser.parse_args(argv)
    console = make_console()
    with console.status("measuring approximations, fidelity and the width sweep"):
        fidelity = measure(args.images, args.sweep_images)
    a, m = fidelity["approximations"], fidelity["model"]
    console.print(f"GELU max error {a['gelu_max_error']:.5f} (i-GELU {a['i_gelu_max_error']:.4f}),"
                  f" softmax max error {a['softmax_max_error']:.2e}")
    table = Table(title=f"tiny: float against integer on {m['images']} test images")
    for column in ("task", "metric", "float", "integer", "SQNR per block (dB)"):
        table.add_column(column)
    for task, t in m["tasks"].items():
        table.add_row(str(task), t["metric"], f"{100 * t['float']:.2f} %",
                      f"{100 * t['integer']:.2f} %",
                      ", ".join(f"{v:.1f}" for v in t["sqnr_db"].values()))
    console.print(table)
    console.print(f"wrote {REPORT / 'fidelity.json'} and plots ({fidelity['seconds']} s)")


if __name__ == "__main__":
    run()
