"""Shared command-line plumbing: build directories, SEED parsing and clear failures."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from rich.console import Console

from hls.flow import HlsError
from pyref.config import ConfigError
from pyref.formats import FormatError
from pyref.host_link import HostLinkError
from pyref.isa import ProgramError
from pyref.optics import OpticsError
from pyref.vectors import VectorError
from sim.runner import SimError

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
VECTORS = BUILD / "vectors"
HLS = BUILD / "hls"
VERILOG = BUILD / "verilog"
SIM = BUILD / "sim"
BITSTREAM = BUILD / "bitstream"
REPORT = BUILD / "report"

#: Errors whose message already says what is wrong and how to fix it.
CLEAR_ERRORS = (HlsError, FormatError, VectorError, SimError, ConfigError, ProgramError,
                OpticsError, HostLinkError)


class ToolError(RuntimeError):
    """An external tool failed; the message names the tool and its log."""


def make_console() -> Console:
    """A rich console; 120 columns when writing to a file or pipe, so tables stay whole."""
    return Console(width=None if sys.stdout.isatty() else 120)


def seed(text: str) -> int:
    """argparse type for SEED: a non-negative integer."""
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"SEED must be an integer in 0..2**32-1, got '{text}' (e.g. make sim SEED=123)")
    return value


def seed_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of every random vector and stall (make: SEED=n)")


def main(run):
    """Run a script's ``run()`` and turn known errors into one clear line and exit code 2."""

    @functools.wraps(run)
    def wrapper(argv=None):
        try:
            return run(argv)
        except (*CLEAR_ERRORS, ToolError) as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper
