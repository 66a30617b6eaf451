"""Bit-exact integer operations: the specification the RTL units must match.

Inputs are integer codes in the named formats of `pyref.formats`; a code outside its format
is an error, never silently clipped.
"""

from __future__ import annotations

import numpy as np

from pyref.formats import ACC, ACT, WEIGHT, FormatError, Overflow, QFormat


def dot(act, weight, *, acc: QFormat = ACC) -> np.ndarray:
    """ACT x WEIGHT dot products along the last axis, accumulated in ``acc``.

    Parameters
    ----------
    act, weight : array_like of int
        Codes in `ACT` and `WEIGHT`, broadcast against each other.
    acc : QFormat
        A wrapping accumulator whose fraction is ``ACT.frac + WEIGHT.frac``.
    """
    if acc.overflow is not Overflow.WRAP or acc.frac != ACT.frac + WEIGHT.frac:
        raise FormatError(f"dot needs a wrapping accumulator with frac {ACT.frac + WEIGHT.frac}")
    a = ACT.fit(act, check=True)
    w = WEIGHT.fit(weight, check=True)
    # A wrapping register gives the same bits whether it wraps after every add or once at
    # the end, and int64 cannot overflow below 2**33 full-scale products.
    return acc.fit((a * w).sum(axis=-1))


def requantise(acc_codes, *, src: QFormat = ACC, dst: QFormat = ACT) -> np.ndarray:
    """Accumulator codes to activations: shift, round to nearest, saturate."""
    return dst.requantise_from(src.fit(acc_codes, check=True), src)
