"""make train-convshare: train ConvShareViT (valid and same) and the ViT baseline.

The bundled MNIST digits, task 0 (digit class) only. Writes pyref/checkpoints/<config>.npz
and <config>.json (accuracy, parameters, multiplies, training time) for each config. CPU,
a few minutes per model.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch.nn import functional as F

from pyref import data
from pyref.config import ConfigError
from pyref.convsharevit import (
    CONFIGS,
    ConvShareViT,
    get_convshare_config,
    macs,
    parameter_count,
    predict,
    use_digital,
    use_optics,
)
from pyref.model import CHECKPOINTS, save_checkpoint
from scripts.common import main, make_console, seed_argument
from scripts.train import fit

#: Physics-aware epochs run at the learning rate over this: they fine-tune a trained model.
PHYSICS_LR_DIVISOR = 6
#: The optics of physics-aware training: the 8-bit SLM and camera `make optics` tests.
PHYSICS_DEVICE = {"slm_bits": 8, "camera_bits": 8}


def classification_loss(model: ConvShareViT, batch: data.Split) -> torch.Tensor:
    patches = torch.from_numpy(data.patchify(batch.images, model.config.patch))
    return F.cross_entropy(model(patches), torch.from_numpy(batch.labels))


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="config to train (repeatable); default: all three")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--physics-aware", type=int, default=0, metavar="EPOCHS",
                        help="then fine-tune this many epochs through the 8-bit optics "
                             "(values from the 4f model, gradients from the digital conv)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", default=CHECKPOINTS, help="checkpoint directory")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.physics_aware < 0:
        raise ConfigError("--epochs must be at least 1 and --physics-aware at least 0")
    torch.set_num_threads(2)
    console = make_console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[loss]}"),
               TimeElapsedColumn()]
    for name in args.config or list(CONFIGS):
        config = get_convshare_config(name)
        torch.manual_seed(args.seed)
        model = ConvShareViT(config)
        train = data.load(config, "train")
        with Progress(*columns, console=console) as progress:
            seconds = fit(model, train, args.epochs, args.batch, args.lr,
                          np.random.default_rng(args.seed), progress, classification_loss)
            if args.physics_aware and model.shared_convs():
                use_optics(model, ideal=False, trainable=True, seed=args.seed, **PHYSICS_DEVICE)
                seconds += fit(model, train, args.physics_aware, args.batch,
                               args.lr / PHYSICS_LR_DIVISOR, np.random.default_rng(args.seed + 1),
                               progress, classification_loss, "physics-aware")
                use_digital(model)
        test = data.load(config, "test")
        report = {"config": config.describe(), "seed": args.seed, "epochs": args.epochs,
                  "physics_aware_epochs": args.physics_aware if model.shared_convs() else 0,
                  "train_seconds": round(seconds, 1), "parameters": parameter_count(model),
                  "macs": macs(config), "test_images": len(test),
                  "accuracy": float((predict(model, test) == test.labels).mean())}
        save_checkpoint(model, out / f"{name}.npz")
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"{name}: accuracy {report['accuracy']:.3f}, "
                      f"{report['parameters']:,} parameters, {seconds:.0f} s")


if __name__ == "__main__":
    run()
