"""pyref.formats against exact rational arithmetic (fractions.Fraction)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyref import formats
from pyref.formats import ACC, ACT, PROB, WEIGHT, FormatError, Overflow, QFormat, Rounding


@st.composite
def qformats(draw):
    signed = draw(st.booleans())
    return QFormat(
        bits=draw(st.integers(2 if signed else 1, 62)),
        frac=draw(st.integers(-8, 40)),
        signed=signed,
        rounding=draw(st.sampled_from(Rounding)),
        overflow=draw(st.sampled_from(Overflow)),
    )


def exact_round(value: Fraction, rounding: Rounding) -> int:
    low = math.floor(value)
    rest = value - low
    if rest > Fraction(1, 2):
        return low + 1
    if rest == Fraction(1, 2):
        return low + 1 if rounding is Rounding.HALF_UP or low % 2 else low
    return low


def exact_fit(code: int, fmt: QFormat) -> int:
    if fmt.overflow is Overflow.SATURATE:
        return min(max(code, fmt.min_code), fmt.max_code)
    code %= 1 << fmt.bits
    return code - (1 << fmt.bits) if fmt.signed and code > fmt.max_code else code


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18)


@settings(max_examples=400)
@given(qformats(), st.lists(finite, min_size=1, max_size=20))
def test_quantise_is_exact_round_then_overflow(fmt, xs):
    got = fmt.quantise(np.array(xs))
    want = [exact_fit(exact_round(Fraction(x) * Fraction(2) ** fmt.frac, fmt.rounding), fmt)
            for x in xs]
    assert got.tolist() == want


@settings(max_examples=400)
@given(qformats(), st.lists(st.integers(-(2**60), 2**60), min_size=1, max_size=20),
       st.integers(-2, 40))
def test_requantise_is_exact(dst, codes, src_frac_offset):
    src = QFormat(62, dst.frac + src_frac_offset)
    got = dst.requantise_from(np.array(codes), src)
    want = [exact_fit(exact_round(Fraction(c, 1) * Fraction(2) ** (dst.frac - src.frac),
                                  dst.rounding), dst) for c in codes]
    assert got.tolist() == want


@given(qformats(), st.data())
def test_dequantise_is_exact_and_quantise_inverts_it(fmt, data):
    if fmt.bits > 53:
        fmt = QFormat(53, fmt.frac, fmt.signed, fmt.rounding, fmt.overflow)
    codes = data.draw(st.lists(st.integers(fmt.min_code, fmt.max_code), min_size=1, max_size=20))
    values = fmt.dequantise(np.array(codes))
    assert [Fraction(v) for v in values] == [Fraction(c) * Fraction(2) ** -fmt.frac for c in codes]
    assert fmt.quantise(values).tolist() == codes


@given(qformats(), finite)
def test_in_range_error_is_at_most_half_an_lsb(fmt, x):
    if not fmt.min_value <= x <= fmt.max_value:
        return
    error = Fraction(fmt.dequantise(fmt.quantise(x))) - Fraction(x)
    assert abs(error) <= Fraction(2) ** -fmt.frac / 2


def test_tie_rules_on_known_ties():
    up = QFormat(8, 0)
    even = QFormat(8, 0, rounding=Rounding.HALF_EVEN)
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert up.quantise(ties).tolist() == [-2, -1, 0, 1, 2, 3]
    assert even.quantise(ties).tolist() == [-2, -2, 0, 0, 2, 2]


def test_saturate_and_wrap_at_the_limits():
    sat = QFormat(8, 0)
    wrap = QFormat(8, 0, overflow=Overflow.WRAP)
    assert sat.fit([127, 128, -129, -128]).tolist() == [127, 127, -128, -128]
    assert wrap.fit([127, 128, -129, -128]).tolist() == [127, -128, 127, -128]
    assert QFormat(8, 0, signed=False, overflow=Overflow.WRAP).fit([256, -1]).tolist() == [0, 255]


def test_checked_fit_names_the_format_and_the_fix():
    with pytest.raises(FormatError, match=r"outside sQ16\.8.*widen the format"):
        ACT.fit([40000], check=True)


@pytest.mark.parametrize("bad", [dict(bits=0, frac=0), dict(bits=63, frac=0),
                                 dict(bits=1, frac=0, signed=True)])
def test_impossible_formats_are_rejected(bad):
    with pytest.raises(FormatError):
        QFormat(**bad)


def test_non_integer_codes_and_nan_are_rejected():
    with pytest.raises(FormatError, match="integers"):
        ACT.fit(np.array([1.5]))
    with pytest.raises(FormatError, match="NaN"):
        ACT.quantise([np.nan])


def test_named_formats_fit_the_hardware():
    # One ECP5 18x18 multiplier per ACT x WEIGHT product; ACC holds their exact products.
    assert ACT.bits <= 18 and WEIGHT.bits <= 18
    assert ACC.frac == ACT.frac + WEIGHT.frac and ACC.bits >= ACT.bits + WEIGHT.bits + 16
    assert ACC.overflow is Overflow.WRAP
    assert PROB.quantise(1.0) == 1 << PROB.frac and not PROB.signed
    assert {"ACT", "WEIGHT", "ACC", "PROB"} <= set(formats.FORMATS)


def test_amaranth_shapes_follow_the_formats():
    for fmt in formats.FORMATS.values():
        shape = fmt.shape()
        assert (shape.width, shape.signed) == (fmt.bits, fmt.signed)
