"""The XLS flow: DSLX -> IR -> optimised IR -> pipelined Verilog, plus a native JIT.

Every kernel takes integer codes of `pyref.formats` and returns one code; `KERNELS` lists
them with their formats and pipeline depth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from hls import formats as dslx_formats
from pyref.formats import ACC, ACT, QFormat

HERE = Path(__file__).parent


class HlsError(RuntimeError):
    """A DSLX kernel that does not convert, or a stale generated file."""


@dataclass(frozen=True)
class Kernel:
    """One DSLX function compiled to a pipeline with a valid signal and no ready.

    Parameters
    ----------
    name : str
        Kernel and Verilog module name; the source is ``hls/<name>.x``.
    inputs : dict of str to QFormat
        The DSLX function's parameters, in order, with their formats.
    output : QFormat
        Format of the returned code.
    stages : int
        Pipeline stages given to the XLS scheduler.
    top : str
        The DSLX function to compile (defaults to ``name``).
    """

    name: str
    inputs: dict[str, QFormat] = field(hash=False)
    output: QFormat
    stages: int
    top: str = ""

    @property
    def source(self) -> Path:
        return HERE / f"{self.name}.x"

    @property
    def function(self) -> str:
        return self.top or self.name

    @property
    def latency(self) -> int:
        """Cycles from ``i_valid`` to ``o_valid``: registers sit between stages only."""
        return self.stages - 1

    def describe(self) -> dict:
        return {
            "module": self.name,
            "stages": self.stages,
            "latency": self.latency,
            "inputs": {k: f.describe() for k, f in self.inputs.items()},
            "output": self.output.describe(),
            "ports": {"clock": "clk", "reset": "rst", "valid_in": "i_valid",
                      "valid_out": "o_valid", "result": "out"},
        }


KERNELS = {k.name: k for k in [Kernel("requant", {"x": ACC}, ACT, stages=2)]}


def _xls():
    try:
        import xls
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise HlsError(f"xls-python is not importable ({e}): run `make setup`") from None
    return xls


def _check_formats_fresh():
    if not dslx_formats.is_fresh():
        raise HlsError(
            f"{dslx_formats.FORMATS_X} is stale against pyref/formats.py: run `make hls` "
            "(it regenerates the file) and commit it"
        )


@cache
def optimised_ir(name: str) -> str:
    """The optimised IR package text of kernel ``name``."""
    _check_formats_fresh()
    kernel = KERNELS[name]
    xls = _xls()
    try:
        ir = xls.convert_dslx_to_ir(
            kernel.source.read_text(), str(kernel.source), kernel.name,
            additional_search_paths=[str(HERE)],
        )
    except Exception as e:
        raise HlsError(f"DSLX conversion of {kernel.source} failed:\n{e}") from None
    return xls.optimize_ir(ir, xls.mangle_dslx_name(kernel.name, kernel.function))


def _function(name: str):
    xls = _xls()
    kernel = KERNELS[name]
    package = xls.parse_ir_package(optimised_ir(name))
    return package, package.get_function(xls.mangle_dslx_name(kernel.name, kernel.function))


def jit(name: str):
    """Kernel ``name`` as a function of numpy code arrays, run natively by the XLS JIT.

    Returns
    -------
    callable
        ``f(*codes) -> np.ndarray`` taking one int array per kernel input.
    """
    xls = _xls()
    kernel = KERNELS[name]
    compiled = _function(name)[1].to_jit()
    makers = [xls.Value.make_sbits if f.signed else xls.Value.make_ubits
              for f in kernel.inputs.values()]
    widths = [f.bits for f in kernel.inputs.values()]

    def to_int(value):
        bits = value.get_bits()
        return bits.to_int64() if kernel.output.signed else bits.to_uint64()

    def run(*codes):
        if len(codes) != len(kernel.inputs):
            raise TypeError(f"{name} takes {len(kernel.inputs)} code arrays, got {len(codes)}")
        arrays = [f.fit(c, check=True).ravel()
                  for f, c in zip(kernel.inputs.values(), codes, strict=True)]
        out = np.empty(arrays[0].shape, dtype=np.int64)
        for i, args in enumerate(zip(*arrays, strict=True)):
            values = [make(w, int(a)) for make, w, a in zip(makers, widths, args, strict=True)]
            out[i] = to_int(compiled.run(values))
        return out.reshape(np.shape(codes[0]))

    return run


def codegen(name: str, outdir: Path) -> Path:
    """Write ``<outdir>/<name>.v`` (pipelined Verilog) and ``<name>.json``; returns the .v."""
    kernel = KERNELS[name]
    package, _ = _function(name)
    result = package.schedule_and_codegen(
        generator="pipeline", pipeline_stages=kernel.stages, delay_model="unit",
        module_name=kernel.name, reset="rst", reset_active_low=False,
        input_valid_signal="i_valid", output_valid_signal="o_valid",
        top=_xls().mangle_dslx_name(kernel.name, kernel.function),
    )
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    verilog = outdir / f"{name}.v"
    verilog.write_text(result.get_verilog_text())
    (outdir / f"{name}.json").write_text(json.dumps(kernel.describe(), indent=2) + "\n")
    return verilog
