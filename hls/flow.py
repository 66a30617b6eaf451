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

from hls import generated
from pyref import approx
from pyref.formats import ACC, ACT, PROB, SUM, WEIGHT, QFormat

HERE = Path(__file__).parent


class HlsError(RuntimeError):
    """A DSLX kernel that does not convert, or a stale generated file."""


#: XLS has no ECP5 delay model; sky130's relative delays still balance the stages far better
#: than counting operations ("unit"): GELU in 5 stages went from 63 to 109 MHz on ECP5.
DELAY_MODEL = "sky130"


#: Register a pipeline's inputs and outputs, so neither its first nor its last stage shares
#: a cycle with the stream adapter's FIFO around it.
FLOP_IO = True


def raw(bits: int, signed: bool = False) -> QFormat:
    """A plain integer port (no fraction) of a kernel."""
    return QFormat(bits, 0, signed)


@dataclass(frozen=True)
class Kernel:
    """One DSLX function compiled to a pipeline with a valid signal and no ready.

    Parameters
    ----------
    name : str
        DSLX function and Verilog module name; also the name of its `pyref.opcases` case.
    module : str
        DSLX source ``hls/<module>.x``.
    inputs : dict of str to QFormat
        The function's parameters, in order, with their formats.
    outputs : dict of str to QFormat
        Its result (the elements of a returned tuple, in order), with their formats.
    stages : int
        Pipeline stages given to the XLS scheduler; 0 for a kernel in `SPLIT`, whose own
        function only runs in the JIT while the hardware uses its two halves.
    """

    name: str
    module: str
    inputs: dict = field(hash=False)
    outputs: dict = field(hash=False)
    stages: int = 0

    @property
    def source(self) -> Path:
        return HERE / f"{self.module}.x"

    @property
    def latency(self) -> int:
        """Cycles from ``i_valid`` to ``o_valid``: registers between the stages plus the
        input and output registers (`FLOP_IO`)."""
        return self.stages - 1 + 2 * FLOP_IO

    def describe(self) -> dict:
        return {
            "module": self.name,
            "source": self.source.name,
            "stages": self.stages,
            "latency": self.latency,
            "inputs": {k: f.describe() for k, f in self.inputs.items()},
            "outputs": {k: f.describe() for k, f in self.outputs.items()},
            "ports": {"clock": "clk", "reset": "rst", "valid_in": "i_valid",
                      "valid_out": "o_valid", "result": "out (tuples: first element in the "
                      "most significant bits)"},
        }


MANTISSA, EXPONENT = raw(17), raw(6)  # a reciprocal or rsqrt as r * 2^-(16 + e)
TOTAL, SQUARES = raw(32, signed=True), raw(48)  # LayerNorm's running sums

KERNELS = {k.name: k for k in [
    Kernel("requant", "requant", {"x": ACC}, {"y": ACT}, stages=3),
    Kernel("gelu", "gelu", {"x": ACT}, {"y": ACT}),
    Kernel("exp2", "softmax", {"d": raw(ACT.bits + 1, signed=True)}, {"y": PROB}),
    Kernel("softmax_step", "softmax", {"maximum": ACT, "total": SUM, "score": ACT},
           {"new_max": ACT, "new_total": SUM, "scale": PROB, "term": PROB}, stages=6),
    Kernel("reciprocal", "softmax", {"total": SUM}, {"r": MANTISSA, "e": EXPONENT}),
    Kernel("normalise", "softmax", {"term": PROB, "r": MANTISSA, "e": EXPONENT}, {"p": PROB},
           stages=3),
    Kernel("ln_accumulate", "layernorm", {"total": TOTAL, "squares": SQUARES, "x": ACT},
           {"new_total": TOTAL, "new_squares": SQUARES}, stages=3),
    Kernel("ln_stats", "layernorm", {"total": TOTAL, "squares": SQUARES, "dim": raw(16),
                                     "eps": raw(32)}, {"r": MANTISSA, "e": EXPONENT}),
    Kernel("ln_apply", "layernorm", {"x": ACT, "total": TOTAL, "dim": raw(16), "r": MANTISSA,
                                     "e": EXPONENT, "gamma": WEIGHT, "beta": WEIGHT},
           {"y": ACT}, stages=3),
]}

#: Kernels whose table lives in block RAM between two XLS pipelines: kernel -> (the part
#: that computes the index, the `pyref.approx` table, the part that interpolates). The
#: kernel's own DSLX function does the same in one piece for the JIT check.
SPLIT = {"gelu": ("gelu_index", "GELU_DELTA", "gelu_finish"),
         "exp2": ("exp2_index", "EXP2_TABLE", "exp2_finish"),
         "reciprocal": ("reciprocal_index", "RECIP_TABLE", "reciprocal_finish"),
         "ln_stats": ("ln_stats_index", "RSQRT_TABLE", "ln_stats_finish")}


def _entry(table: str) -> QFormat:
    return raw(int(getattr(approx, table).max()).bit_length())


_GELU_INDEX = raw((len(approx.GELU_DELTA) - 2).bit_length())
_GELU_REST = raw(ACT.frac - approx.GELU_STEP_BITS)
_EXP2_INDEX = raw(approx.EXP2_INDEX_BITS)
_EXP2_REST = raw(approx.TABLE_FRAC - approx.EXP2_INDEX_BITS)
_RECIP_INDEX = raw(approx.RECIP_INDEX_BITS)
_RECIP_REST = raw(approx.TABLE_FRAC - approx.RECIP_INDEX_BITS)
_RSQRT_INDEX = raw((len(approx.RSQRT_TABLE) - 2).bit_length())
_RSQRT_REST = raw(approx.TABLE_FRAC - approx.RSQRT_INDEX_BITS)
#: The halves of split kernels: compiled like kernels, checked through the kernel they make.
PARTS = {k.name: k for k in [
    Kernel("gelu_index", "gelu", {"x": ACT},
           {"x": ACT, "index": _GELU_INDEX, "rest": _GELU_REST, "in_table": raw(1)}, stages=2),
    Kernel("gelu_finish", "gelu", {"x": ACT, "rest": _GELU_REST, "in_table": raw(1),
                                   "low": _entry("GELU_DELTA"), "high": _entry("GELU_DELTA")},
           {"y": ACT}, stages=8),
    Kernel("exp2_index", "softmax", {"d": raw(ACT.bits + 1, signed=True)},
           {"index": _EXP2_INDEX, "rest": _EXP2_REST, "shift": raw(16)}, stages=4),
    Kernel("exp2_finish", "softmax", {"rest": _EXP2_REST, "shift": raw(16),
                                      "low": _entry("EXP2_TABLE"), "high": _entry("EXP2_TABLE")},
           {"y": PROB}, stages=8),
    Kernel("reciprocal_index", "softmax", {"total": SUM},
           {"index": _RECIP_INDEX, "rest": _RECIP_REST, "e": EXPONENT}, stages=4),
    Kernel("reciprocal_finish", "softmax", {"rest": _RECIP_REST, "e": EXPONENT,
                                            "low": _entry("RECIP_TABLE"),
                                            "high": _entry("RECIP_TABLE")},
           {"r": MANTISSA, "e": EXPONENT}, stages=4),
    Kernel("ln_stats_index", "layernorm", {"total": TOTAL, "squares": SQUARES, "dim": raw(16),
                                           "eps": raw(32)},
           {"index": _RSQRT_INDEX, "rest": _RSQRT_REST, "e": EXPONENT}, stages=6),
    Kernel("ln_stats_finish", "layernorm", {"rest": _RSQRT_REST, "e": EXPONENT,
                                            "low": _entry("RSQRT_TABLE"),
                                            "high": _entry("RSQRT_TABLE")},
           {"r": MANTISSA, "e": EXPONENT}, stages=4),
]}


def _kernel(name: str) -> Kernel:
    return KERNELS[name] if name in KERNELS else PARTS[name]


def pipelines(kernel: str) -> tuple:
    """The XLS pipelines the unit of ``kernel`` instantiates: itself, or the two halves of a
    split kernel (whose own function only runs in the JIT)."""
    return (SPLIT[kernel][0], SPLIT[kernel][2]) if kernel in SPLIT else (kernel,)


def all_pipelines() -> list[str]:
    """Every XLS pipeline the hardware instantiates."""
    return [p for kernel in KERNELS for p in pipelines(kernel)]


def _xls():
    try:
        import xls
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise HlsError(f"xls-python is not importable ({e}): run `make setup`") from None
    return xls


def _check_generated_fresh():
    stale = generated.stale()
    if stale:
        raise HlsError(f"{', '.join(str(p) for p in stale)} stale against pyref: run `make hls` "
                       "(it regenerates them) and commit the result")


@cache
def optimised_ir(name: str) -> str:
    """The optimised IR package text of kernel ``name``."""
    _check_generated_fresh()
    kernel = _kernel(name)
    xls = _xls()
    try:
        ir = xls.convert_dslx_to_ir(
            kernel.source.read_text(), str(kernel.source), kernel.module,
            additional_search_paths=[str(HERE)],
        )
    except Exception as e:
        raise HlsError(f"DSLX conversion of {kernel.source} failed:\n{e}") from None
    return xls.optimize_ir(ir, _top(kernel))


def _top(kernel: Kernel) -> str:
    return _xls().mangle_dslx_name(kernel.module, kernel.name)


def _function(name: str):
    package = _xls().parse_ir_package(optimised_ir(name))
    return package, package.get_function(_top(_kernel(name)))


def jit(name: str):
    """Kernel ``name`` as a function of numpy code arrays, run natively by the XLS JIT.

    Returns
    -------
    callable
        ``f(**codes) -> {output: np.ndarray}`` taking one int array per kernel input, by
        argument name.
    """
    xls = _xls()
    kernel = _kernel(name)
    compiled = _function(name)[1].to_jit()
    makers = [(xls.Value.make_sbits if f.signed else xls.Value.make_ubits, f.bits)
              for f in kernel.inputs.values()]
    outputs = list(kernel.outputs.items())

    def to_int(value, fmt):
        bits = value.get_bits()
        return bits.to_int64() if fmt.signed else bits.to_uint64()

    def run(**codes):
        if set(codes) != set(kernel.inputs):
            raise TypeError(f"{name} takes {', '.join(kernel.inputs)}, got {', '.join(codes)}")
        arrays = [f.fit(codes[k], check=True).ravel() for k, f in kernel.inputs.items()]
        out = np.empty((len(outputs), arrays[0].size), dtype=np.int64)
        for i, args in enumerate(zip(*arrays, strict=True)):
            result = compiled.run([make(w, int(a)) for (make, w), a in zip(makers, args,
                                                                           strict=True)])
            if len(outputs) == 1:
                out[0, i] = to_int(result, outputs[0][1])
            else:
                for j, (_, fmt) in enumerate(outputs):
                    out[j, i] = to_int(result.get_element(j), fmt)
        return {k: row for (k, _), row in zip(outputs, out, strict=True)}

    return run


def codegen(name: str, outdir: Path) -> Path:
    """Write ``<outdir>/<name>.v`` (pipelined Verilog) and ``<name>.json``; returns the .v."""
    kernel = _kernel(name)
    if kernel.stages < 1:
        raise HlsError(f"{name} is built from its halves {SPLIT[name]}, not compiled itself")
    package, _ = _function(name)
    result = package.schedule_and_codegen(
        generator="pipeline", pipeline_stages=kernel.stages, delay_model=DELAY_MODEL,
        module_name=kernel.name, reset="rst", reset_active_low=False,
        input_valid_signal="i_valid", output_valid_signal="o_valid", top=_top(kernel),
        flop_inputs=FLOP_IO, flop_outputs=FLOP_IO,
    )
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    verilog = outdir / f"{name}.v"
    verilog.write_text(result.get_verilog_text())
    (outdir / f"{name}.json").write_text(json.dumps(kernel.describe(), indent=2) + "\n")
    return verilog
