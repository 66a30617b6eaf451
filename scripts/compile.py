"""Compile a model for the accelerator and print its memory map and a task's program
(docs/isa.md): ``python -m scripts.compile [--config tiny] [--hw ecp5-85f] [--task 0]``."""

import argparse

from pyref import isa
from pyref.config import CONFIGS, HW_CONFIGS
from pyref.workload import workload
from scripts.common import main, seed_argument


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="tiny", choices=list(CONFIGS))
    parser.add_argument("--hw", default="ecp5-85f", choices=list(HW_CONFIGS))
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--depth", type=int, default=None, help="keep only the first blocks")
    parser.add_argument("--memory-words", type=int, default=1 << 24)
    seed_argument(parser)
    args = parser.parse_args(argv)
    work = workload(args.config, args.hw, 1, args.seed, args.memory_words, args.depth)
    image = work.image
    task = image.check_task(args.task)
    print(f"{image.config.name} on {image.hw.name}: {len(image.words)} words of "
          f"{isa.word_bits(image.hw)} bits")
    for name, (base, words) in image.regions.items():
        print(f"  {name:<11} @{base:<9} {words} words")
    print(f"  entry table @0: task programs at {image.entries}")
    marks = dict(image.marks[task])
    for index, line in enumerate(isa.listing(image.hw, image.programs[task]).splitlines()):
        if index in marks:
            print(f"# {marks[index]}")
        print(line)


if __name__ == "__main__":
    run()
