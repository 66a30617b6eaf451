"""make verilog: emit every design's Verilog and port description to build/verilog."""

import argparse

from scripts.common import main
from scripts.designs import DESIGNS, design_argument


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    design_argument(parser)
    args = parser.parse_args(argv)
    for name in args.designs or DESIGNS:
        for path in DESIGNS[name].verilog():
            print(f"wrote {path}")


if __name__ == "__main__":
    run()
