"""Run the tiny model on a board over its serial line (`pyref.host_link`, docs/host_link.md).

Loads the compiled model, sends test images, runs every task and checks each logit against
the integer model: the same host code the board's cocotb bench runs (`make sim-board`).

    python -m scripts.host --port /dev/ttyUSB0 --images 8
"""

import argparse
import time

from pyref import host_link
from pyref.config import ConfigError
from pyref.workload import workload
from scripts.common import main, make_console, seed_argument
from scripts.designs import BOARD_DESIGNS

#: Seconds the host waits for a reply before it names the problem.
TIMEOUT_S = 5.0


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=host_link.BAUD,
                        help=f"default {host_link.BAUD}, the rate the bitstream is built for")
    parser.add_argument("--images", type=int, default=8, help="test images to run")
    seed_argument(parser)
    args = parser.parse_args(argv)
    if args.images < 1:
        raise ConfigError("--images must be at least 1")
    import serial

    console = make_console()
    # The model the ULX3S bitstream runs, compiled for its SDRAM: the board that
    # `make sim-board` checks on the chip model.
    board = BOARD_DESIGNS["board_sdram"]
    work = workload(board.bench_args["config"], board.params["hw"], args.images, args.seed,
                    board.params["memory_words"])
    try:
        port = serial.Serial(args.port, args.baud, timeout=TIMEOUT_S)
    except serial.SerialException as e:
        raise host_link.HostLinkError(f"cannot open {args.port}: {e}") from None
    with port:
        start = time.monotonic()
        host_link.run(host_link.load(work.image), port)
        console.print(f"loaded {len(work.image.words)} words in "
                      f"{time.monotonic() - start:.1f} s")
        wrong = checked = 0
        for task in work.image.programs:
            expected = work.expected(task)
            for index, codes in enumerate(work.codes):
                logits, cycles = host_link.run(host_link.infer(work.image, codes, task), port)
                differ = int((logits != expected[index]).sum())
                wrong, checked = wrong + differ, checked + logits.size
                console.print(f"task {task} image {index}: {cycles} cycles, "
                              f"{differ} of {logits.size} logits differ")
    if wrong:
        raise host_link.HostLinkError(f"{wrong} of {checked} logits differ from the integer "
                                      "model")
    console.print(f"all {checked} logits equal the integer model's")


if __name__ == "__main__":
    run()
