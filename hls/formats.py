"""Generate ``hls/formats.x``: the DSLX view of `pyref.formats`.

The file is committed so the DSLX sources read on their own; a test fails when it no longer
matches `pyref.formats`, and ``make hls`` rewrites it.
"""

from __future__ import annotations

from pathlib import Path

from pyref.formats import FORMATS, Overflow, Rounding

FORMATS_X = Path(__file__).with_name("formats.x")


def dslx_text() -> str:
    """The DSLX constants and types of every named format."""
    lines = [
        "// Generated from pyref/formats.py by `make hls`; do not edit.",
        "// A code q of format NAME stands for q * 2^-NAME_FRAC.",
        "",
    ]
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


def write() -> Path:
    """Rewrite ``hls/formats.x`` if it differs from `dslx_text`."""
    text = dslx_text()
    if not FORMATS_X.exists() or FORMATS_X.read_text() != text:
        FORMATS_X.write_text(text)
    return FORMATS_X


def is_fresh() -> bool:
    return FORMATS_X.exists() and FORMATS_X.read_text() == dslx_text()
