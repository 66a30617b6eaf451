"""Generate the DSLX views of pyref: ``hls/formats.x`` and ``hls/tables.x``.

The files are committed so the DSLX sources read on their own; a test fails when either
no longer matches pyref, and ``make hls`` rewrites them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyref import approx
from pyref.formats import FORMATS, Overflow, Rounding

HERE = Path(__file__).parent
HEADER = "// Generated from {} by `make hls`; do not edit.\n"


def formats_text() -> str:
    """The DSLX constants and types of every named format."""
    lines = [HEADER.format("pyref/formats.py") + "// A code q of format NAME stands for "
             "q * 2^-NAME_FRAC.", ""]
    for name, fmt in FORMATS.items():
        kind = "sN" if fmt.signed else "uN"
        lines += [
            f"// {name}: {fmt}, rounding {fmt.rounding.value}, overflow {fmt.overflow.value}",
            f"pub const {name}_BITS = u32:{fmt.bits};",
            f"pub const {name}_FRAC = u32:{fmt.frac};",
            f"pub const {name}_SIGNED = {str(fmt.signed).lower()};",
            f"pub const {name}_HALF_EVEN = {str(fmt.rounding is Rounding.HALF_EVEN).lower()};",
            f"pub const {name}_SATURATE = {str(fmt.overflow is Overflow.SATURATE).lower()};",
            f"pub type {name.capitalize()} = {kind}[{name}_BITS];",
            f"pub const {name}_MIN = {kind}[{name}_BITS]:{fmt.min_code};",
            f"pub const {name}_MAX = {kind}[{name}_BITS]:{fmt.max_code};",
            "",
        ]
    return "\n".join(lines)


def _table(name: str, values: np.ndarray) -> list[str]:
    bits = max(int(values.max()).bit_length(), 1)
    # Signed width of the largest step between neighbours: interpolation multiplies by it.
    step_bits = int(np.abs(np.diff(values)).max()).bit_length() + 1
    rows = [", ".join(str(int(v)) for v in values[i:i + 12]) for i in range(0, len(values), 12)]
    body = ",\n    ".join(rows)
    return [f"pub const {name}_BITS = u32:{bits};",
            f"pub const {name}_STEP_BITS = u32:{step_bits};",
            f"pub const {name}_ENTRIES = u32:{len(values)};",
            f"pub const {name} = uN[{name}_BITS][{name}_ENTRIES]:[\n    {body}\n];", ""]


def tables_text() -> str:
    """The approximation tables and their constants from `pyref.approx`."""
    lines = [HEADER.format("pyref/approx.py") + "// Entries carry TABLE_FRAC fraction bits.", "",
             f"pub const TABLE_FRAC = u32:{approx.TABLE_FRAC};",
             f"pub const GELU_STEP_BITS = u32:{approx.GELU_STEP_BITS};",
             f"pub const LOG2E = u16:{approx.LOG2E};",
             f"pub const EXP2_INDEX_BITS = u32:{approx.EXP2_INDEX_BITS};",
             f"pub const RECIP_INDEX_BITS = u32:{approx.RECIP_INDEX_BITS};",
             f"pub const RSQRT_INDEX_BITS = u32:{approx.RSQRT_INDEX_BITS};", ""]
    for name in ("GELU_DELTA", "EXP2_TABLE", "RECIP_TABLE", "RSQRT_TABLE"):
        lines += _table(name, getattr(approx, name))
    # The float exp baseline's constants as float32 bit patterns.
    coeffs = ", ".join(f"u32:{int(c)}" for c in approx.EXP_FLOAT_COEFFS.view(np.uint32))
    lines += [f"pub const EXP_FLOAT_LOG2E = u32:{int(approx.EXP_FLOAT_LOG2E.view(np.uint32))};",
              f"pub const EXP_FLOAT_MIN = s32:{approx.EXP_FLOAT_MIN};",
              f"pub const EXP_FLOAT_COEFFS = u32[{len(approx.EXP_FLOAT_COEFFS)}]:[{coeffs}];",
              ""]
    return "\n".join(lines)


#: Every generated file and the function that makes its text.
GENERATED = {HERE / "formats.x": formats_text, HERE / "tables.x": tables_text}


def write() -> list[Path]:
    """Rewrite the generated files that differ from their source; returns all of them."""
    for path, text in GENERATED.items():
        fresh = text()
        if not path.exists() or path.read_text() != fresh:
            path.write_text(fresh)
    return list(GENERATED)


def stale() -> list[Path]:
    """Generated files that no longer match pyref."""
    return [p for p, text in GENERATED.items() if not p.exists() or p.read_text() != text()]
