"""Where nextpnr's router2 could not share wires: its heatmaps, summed by module and tile.

`scripts.bitstream` asks router2 for heatmaps (``--router2-heatmap``): after each
iteration, the overuse of every net, of every wire type and of every tile. A design that
does not route converges to a few thousand overused wires that stay; this reads the last
iteration written and says which modules' nets and which part of the chip hold them, and
plots the chip (``congestion.png``). Usage: ``python -m scripts.congestion <build dir>``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import numpy as np

from scripts.common import ToolError, main, make_console

#: The heatmap prefix `scripts.bitstream` gives router2 (``--router2-heatmap``), under a
#: build directory; router2 adds ``_congestion_by_<kind>_<iteration>.csv``.
HEATMAPS = "heat/router2"
PREFIX = f"{HEATMAPS}_congestion"
#: A net's module: its hierarchical name down to this many levels below the board.
MODULE_LEVELS = 4


def last_iteration(build: Path) -> int:
    """The last router2 iteration with heatmaps in ``build``."""
    found = [int(m.group(1)) for p in build.glob(f"{PREFIX}_by_net_*.csv")
             if (m := re.search(r"_(\d+)\.csv$", p.name))]
    if not found:
        raise ToolError(f"no router2 heatmaps in {(build / HEATMAPS).parent}: run "
                        "`python -m scripts.bitstream <design>` on a design routed by router2")
    return max(found)


def by_module(build: Path, iteration: int) -> Counter:
    """Wire overuse of each module's nets (a net's name cut to `MODULE_LEVELS`)."""
    overuse = Counter()
    for line in (build / f"{PREFIX}_by_net_{iteration}.csv").read_text().splitlines():
        net, _, count = line.rpartition(",")
        overuse[".".join(net.split(".")[:MODULE_LEVELS])] += int(count)
    return overuse


def by_wire_type(build: Path, iteration: int) -> Counter:
    """Overused wires of each wire type (those bound to two nets or more)."""
    overused = Counter()
    for line in (build / f"{PREFIX}_by_wiretype_{iteration}.csv").read_text().splitlines()[1:]:
        kind, *counts = line.rstrip(",").split(",")
        overused[kind.removeprefix("WIRE_TYPE_")] = sum(int(c) for c in counts[2:])
    return overused


def by_tile(build: Path, iteration: int) -> np.ndarray:
    """Overuse of each tile, indexed ``[x, y]``."""
    rows = (build / f"{PREFIX}_by_coordinate_{iteration}.csv").read_text().splitlines()
    return np.array([[int(v) for v in row.rstrip(",").split(",")] for row in rows])


def plot(tiles: np.ndarray, iteration: int, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    image = ax.imshow(tiles.T, cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="overuse")
    ax.set(xlabel="tile x", ylabel="tile y",
           title=f"router2 overuse after iteration {iteration}")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


@main
def run(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.congestion", description=__doc__)
    parser.add_argument("build", type=Path, help="a design's build directory, "
                        "e.g. build/bitstream/ulx3s")
    parser.add_argument("--top", type=int, default=12, help="modules to list")
    args = parser.parse_args(argv)
    iteration = last_iteration(args.build)
    console = make_console()
    tiles = by_tile(args.build, iteration)
    modules = by_module(args.build, iteration)
    wire_types = by_wire_type(args.build, iteration)
    console.print(f"router2 iteration {iteration}: {sum(wire_types.values())} overused wires; "
                  "by type: " + ", ".join(f"{kind} {n}" for kind, n in
                                          wire_types.most_common(6) if n))
    console.print("overuse by module (a wire shared by n nets counts n - 1 for each):")
    for module, count in modules.most_common(args.top):
        console.print(f"  {count:7d}  {module}")
    xs, ys = np.nonzero(tiles)
    if len(xs):
        weights = tiles[xs, ys]
        console.print(f"overuse centred at tile ({np.average(xs, weights=weights):.0f}, "
                      f"{np.average(ys, weights=weights):.0f}); "
                      f"half of it within x {_middle_half(xs, weights)}, "
                      f"y {_middle_half(ys, weights)}")
    plot(tiles, iteration, args.build / "congestion.png")
    console.print(f"plot: {args.build / 'congestion.png'}")


def _middle_half(positions: np.ndarray, weights: np.ndarray) -> str:
    """The span holding the middle half of ``weights`` along ``positions``."""
    order = np.argsort(positions)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    low, high = positions[order][np.searchsorted(cumulative, [0.25, 0.75])]
    return f"{low}..{high}"


if __name__ == "__main__":
    run()
