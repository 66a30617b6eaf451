"""make vectors: write every seeded vector set with its manifest to build/vectors."""

import argparse

from pyref import vectors
from scripts.common import VECTORS, main, seed_argument


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--out", default=VECTORS, help="output directory")
    args = parser.parse_args(argv)
    for name in vectors.GENERATORS:
        path = vectors.write(name, args.out, args.seed)
        print(f"wrote {path.with_suffix('.npz')} (seed {args.seed})")


if __name__ == "__main__":
    run()
