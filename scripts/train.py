"""make train: train the tiny multi-task MoE ViT on the bundled MNIST and ship its checkpoint.

Writes pyref/checkpoints/<config>.npz (float32 weights) and <config>.json (metrics, expert
usage per task, training time). Runs on the CPU in a few minutes.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch.nn import functional as F

from pyref import data, metrics
from pyref.config import ConfigError, get_config
from pyref.model import CHECKPOINTS, MultiTaskViT, save_checkpoint
from scripts.common import main, make_console, seed_argument

#: Weight of the Switch-style load-balancing loss.
BALANCE = 0.02
#: Largest pixel shift of the training augmentation.
SHIFT = 2


def balance_loss(routing, experts: int) -> torch.Tensor:
    """Switch-Transformer balance loss, experts · Σ_e (share of choices) · (mean probability)."""
    total = 0.0
    for probs, chosen in routing:
        share = F.one_hot(chosen, experts).float().mean(dim=(0, 1, 2))
        total = total + experts * (share * probs.mean(dim=(0, 1))).sum()
    return total / max(len(routing), 1)


def shifted(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by up to `SHIFT` pixels, filling with background."""
    out = np.zeros_like(ink)
    for i, (dy, dx) in enumerate(rng.integers(-SHIFT, SHIFT + 1, size=(len(ink), 2))):
        src = ink[i, max(0, -dy):ink.shape[1] - max(0, dy), max(0, -dx):ink.shape[2] - max(0, dx)]
        out[i, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def fit(model, split: data.Split, epochs: int, batch: int, lr: float,
        rng: np.random.Generator, progress, loss, label: str = "training") -> float:
    """Train ``model`` in place: AdamW with a one-cycle schedule over ``epochs`` shifted
    copies of ``split``, ``loss(model, batch_split)`` per batch. Returns the seconds taken."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * -(-len(split) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    bar = progress.add_task(f"{label} {model.config.name}", total=steps, loss="")
    start = time.monotonic()
    for epoch in range(epochs):
        model.train()
        epoch_split = data.Split(shifted(split.ink, rng), split.labels, split.patch)
        order = rng.permutation(len(split))
        for first in range(0, len(order), batch):
            value = loss(model, epoch_split.subset(order[first:first + batch]))
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            schedule.step()
            progress.update(bar, advance=1, loss=f"epoch {epoch + 1} loss {value.item():.3f}")
    model.eval()
    return time.monotonic() - start


def multitask_loss(model: MultiTaskViT, batch: data.Split) -> torch.Tensor:
    """Both tasks' cross-entropy plus the routers' balance loss."""
    patches = torch.from_numpy(data.patchify(batch.images, model.config.patch))
    logits0, routing0 = model(patches, 0)
    logits1, routing1 = model(patches, 1)
    return (F.cross_entropy(logits0, torch.from_numpy(batch.labels))
            + F.cross_entropy(logits1.flatten(0, 1),
                              torch.from_numpy(batch.patch_labels).flatten())
            + BALANCE * balance_loss(routing0 + routing1, model.config.experts))


def evaluate(model: MultiTaskViT, split: data.Split) -> dict:
    """Per-task metric and expert usage per MoE layer on ``split``."""
    patches = torch.from_numpy(data.patchify(split.images, model.config.patch))
    result, chosen = {}, {}
    with torch.no_grad():
        for task in range(model.config.tasks):
            logits, routing = model(patches, task)
            chosen[task] = [c.numpy() for _, c in routing]
            result[f"task{task}"] = {
                metrics.TASK_METRICS[task]: metrics.task_metric(
                    task, logits.numpy(), split.labels, split.patch_labels),
                "expert_usage": [metrics.expert_usage(c, model.config.experts).round(4).tolist()
                                 for c in chosen[task]],
            }
    usage = [result[f"task{t}"]["expert_usage"] for t in range(2)]
    result["usage_distance"] = [round(metrics.usage_distance(a, b), 4)
                                for a, b in zip(*usage, strict=True)]
    result["routing_disagreement"] = [round(metrics.routing_disagreement(a, b), 4)
                                      for a, b in zip(chosen[0], chosen[1], strict=True)]
    return result


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", default=CHECKPOINTS, help="checkpoint directory")
    args = parser.parse_args(argv)
    config = get_config(args.config)
    if args.epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    train, test = data.load(config, "train"), data.load(config, "test")
    model = MultiTaskViT(config)
    console = make_console()
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[loss]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        seconds = fit(model, train, args.epochs, args.batch, args.lr, rng, progress,
                      multitask_loss)
    report = {"config": config.name, "seed": args.seed, "epochs": args.epochs,
              "train_seconds": round(seconds, 1), "test": evaluate(model, test),
              "train_images": len(train), "test_images": len(test)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, out / f"{config.name}.npz")
    (out / f"{config.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print_json(json.dumps(report))
    console.print(f"wrote {out / f'{config.name}.npz'} "
                  f"({(out / f'{config.name}.npz').stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    run()
