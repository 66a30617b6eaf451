"""Fixed-point formats: the one source of numeric truth for lumoe.

Every integer model, Amaranth shape, DSLX constant and vector manifest derives from the
formats named here. A value with code ``q`` in format ``QFormat(bits, frac, signed)`` stands
for ``q / 2**frac``; codes are held in ``int64`` numpy arrays.

Rounding is to nearest. Ties go towards +infinity (``HALF_UP``) by default because in
hardware that is one add of half an LSB before an arithmetic shift; ``HALF_EVEN`` is there
for formats where the tiny bias of ``HALF_UP`` matters. Overflow either saturates to the
nearest representable code or wraps modulo ``2**bits`` like a plain register.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class FormatError(ValueError):
    """A value or format that does not fit the fixed-point rules."""


class Rounding(enum.Enum):
    """Round-to-nearest tie rules."""

    HALF_UP = "half_up"  #: ties go towards +infinity
    HALF_EVEN = "half_even"  #: ties go to the even code


class Overflow(enum.Enum):
    """What happens to a value outside a format's range."""

    SATURATE = "saturate"  #: clamp to the nearest representable code
    WRAP = "wrap"  #: keep the low ``bits`` bits (two's complement)


# int64 holds every code and intermediate we compute; wider formats would need object arrays.
_MAX_BITS = 62


@dataclass(frozen=True)
class QFormat:
    """A two's complement (or unsigned) fixed-point format.

    Parameters
    ----------
    bits : int
        Total width, sign bit included.
    frac : int
        Fractional bits: the code ``q`` stands for ``q * 2**-frac``.
    signed : bool
        Two's complement when true, unsigned otherwise.
    rounding : Rounding
        Tie rule used when a value is rounded into this format.
    overflow : Overflow
        Rule used when a value falls outside this format.
    """

    bits: int
    frac: int
    signed: bool = True
    rounding: Rounding = Rounding.HALF_UP
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self):
        if not 1 <= self.bits <= _MAX_BITS:
            raise FormatError(f"QFormat bits={self.bits}: must be 1..{_MAX_BITS} (int64 codes)")
        if self.signed and self.bits < 2:
            raise FormatError("a signed QFormat needs at least 2 bits")

    @property
    def min_code(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        """The value of one code step."""
        return 2.0**-self.frac

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    def describe(self) -> dict:
        """A JSON-friendly description, used in manifests and reports."""
        return {
            "bits": self.bits,
            "frac": self.frac,
            "signed": self.signed,
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    def __str__(self) -> str:
        kind = "s" if self.signed else "u"
        return f"{kind}Q{self.bits}.{self.frac}"

    # -- integer rules --------------------------------------------------------------------
    def fit(self, codes, *, check: bool = False) -> np.ndarray:
        """Apply the overflow rule to integer codes.

        Parameters
        ----------
        codes : array_like of int
            Codes that may lie outside the format.
        check : bool
            Raise `FormatError` instead of saturating or wrapping.
        """
        q = _as_int64(codes)
        if check:
            bad = (q < self.min_code) | (q > self.max_code)
            if bad.any():
                first = q[bad].flat[0]
                raise FormatError(
                    f"code {first} is outside {self} [{self.min_code}, {self.max_code}] "
                    f"({int(bad.sum())} values): widen the format or rescale the input"
                )
            return q
        if self.overflow is Overflow.SATURATE:
            return np.clip(q, self.min_code, self.max_code)
        low = q & ((1 << self.bits) - 1)
        if self.signed:
            low = np.where(low > self.max_code, low - (1 << self.bits), low)
        return low

    def round_shift(self, codes, shift) -> np.ndarray:
        """Divide integer codes by ``2**shift`` and round to nearest with this format's tie rule.

        ``shift`` may be an array (one shift per code). No overflow rule is applied; a
        negative shift multiplies exactly. Shifts past 62 bits act as 62: every int64 code
        of magnitude below 2**61 then rounds to zero, as it should.
        """
        q = _as_int64(codes)
        shift = np.minimum(np.asarray(shift, dtype=np.int64), _MAX_BITS)
        right = np.maximum(shift, 1)  # keeps the unused branch of np.where defined
        half = np.int64(1) << (right - 1)
        if self.rounding is Rounding.HALF_UP:
            rounded = (q + half) >> right
        else:
            rounded = (q + half - 1 + ((q >> right) & 1)) >> right
        return np.where(shift > 0, rounded, q << np.maximum(-shift, 0))

    # -- conversions ----------------------------------------------------------------------
    def quantise(self, x, *, check: bool = False) -> np.ndarray:
        """Round real values to codes of this format.

        Exact for every double-precision input: scaling by a power of two and
        ``floor``/``ceil`` are exact, so ties are seen as ties.
        """
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise FormatError(f"cannot quantise NaN or infinity to {self}")
        if self.overflow is Overflow.WRAP and not check:
            # Reducing modulo the format's span first is exact (fmod is) and commutes with
            # rounding, because the span is a whole number of LSBs.
            x = np.fmod(x, 2.0 ** (self.bits - self.frac))
        # Clipping far beyond every format keeps int64 exact and out-of-range values out.
        limit = 2.0**_MAX_BITS
        scaled = np.clip(np.ldexp(x, self.frac), -limit, limit)
        low = np.floor(scaled)
        rest = scaled - low  # exact: 0 <= rest < 1
        if self.rounding is Rounding.HALF_UP:
            up = rest >= 0.5
        else:
            up = (rest > 0.5) | ((rest == 0.5) & (np.fmod(low, 2) != 0))
        return self.fit(low.astype(np.int64) + up, check=check)

    def dequantise(self, codes) -> np.ndarray:
        """Codes of this format as float64 values (exact for bits <= 53)."""
        return np.ldexp(_as_int64(codes).astype(np.float64), -self.frac)

    def requantise_from(self, codes, src: QFormat) -> np.ndarray:
        """Convert codes of format ``src`` into this format: shift, round, then overflow rule."""
        return self.fit(self.round_shift(codes, src.frac - self.frac))

    # -- hardware views -------------------------------------------------------------------
    def shape(self):
        """The Amaranth shape of one code."""
        from amaranth.hdl import signed, unsigned

        return signed(self.bits) if self.signed else unsigned(self.bits)

    def random(self, rng: np.random.Generator, size) -> np.ndarray:
        """Uniformly random codes over the whole format."""
        return rng.integers(self.min_code, self.max_code, size=size, endpoint=True, dtype=np.int64)

    def edges(self) -> np.ndarray:
        """Codes at and next to the limits and zero, where overflow and rounding bugs live."""
        near = [self.min_code, self.min_code + 1, -1, 0, 1, self.max_code - 1, self.max_code]
        return np.unique(np.clip(near, self.min_code, self.max_code)).astype(np.int64)


def _as_int64(codes) -> np.ndarray:
    q = np.asarray(codes)
    if q.dtype.kind not in "iu":
        raise FormatError(f"fixed-point codes must be integers, got dtype {q.dtype}")
    return q.astype(np.int64)


#: Activations between layers: 16 bits, range [-128, 128) in steps of 1/256. The residual
#: stream of small ViTs stays well inside +-128; Edge-MoE used 32-bit ap_fixed<32,10>.
ACT = QFormat(16, 8)
#: Weights and LayerNorm parameters: 16 bits in [-2, 2), like Edge-MoE's ap_fixed<16,2>.
WEIGHT = QFormat(16, 14)
#: Accumulator of ACT x WEIGHT products. 48 bits hold 2**17 full-scale products, and wrap
#: like the hardware register (ECP5's ALU54 holds it in one DSP slice).
ACC = QFormat(48, ACT.frac + WEIGHT.frac, overflow=Overflow.WRAP)
#: Probabilities (softmax outputs, expert scores): unsigned, [0, 2) in steps of 2**-15 so
#: that 1.0 is exact.
PROB = QFormat(16, 15, signed=False)

#: Biases, added straight into the accumulator: ACC's fraction, 32 bits (range +-512).
BIAS = QFormat(32, ACC.frac)
#: Running sums of exponentials in the online softmax: PROB's fraction, room for 2**17 terms.
SUM = QFormat(32, PROB.frac, signed=False)
#: LayerNorm's normalised values (x - mean) / std: |x| <= sqrt(dim - 1) < 16 for dim <= 256.
NORM = QFormat(16, 11)

#: Attention's output accumulator: softmax terms times values (``PROB.frac + ACT.frac``
#: fraction bits) before the division by the total. A row of ``n`` keys sums at most ``n``
#: terms of 1 times full-scale values: ``n * 2^30``, so 40 bits hold rows of up to 511 keys.
ATTN = QFormat(40, PROB.frac + ACT.frac)

#: Rounding of intermediates inside a datapath (not into a named format): to nearest, ties
#: up, so one add before the shift.
DATAPATH = QFormat(_MAX_BITS, 0)

#: The optical I/O unit (`pyref.optical_io`). An SLM pixel's amplitude and a camera
#: pixel's intensity: 8-bit codes, full scale 255.
SLM_PIXEL = QFormat(8, 0, signed=False)
CAMERA_PIXEL = QFormat(8, 0, signed=False)
#: A camera pixel's field in units of its pass's scale (`pyref.optical_io.FIELD_TABLES`):
#: code / 255 (homodyne) or its square root (direct). Unsigned, 1.0 exact, 17 bits so that
#: it is one signed 18-bit multiplier input.
AMPLITUDE = QFormat(17, 16, signed=False)
#: A pass's scale: ACT codes per unit of the field table, signed by the pass's sign. 24 bits with
#: 4 fraction bits reach +-2^19 codes: a kernel part's gain up to 16 at full-scale inputs.
OPTICAL_SCALE = QFormat(24, 4)
#: Sum of up to four passes' amplitude x scale products, before rounding to ACT: each
#: product is below 2^40, so four never wrap.
OPTICAL_ACC = QFormat(44, AMPLITUDE.frac + OPTICAL_SCALE.frac, overflow=Overflow.WRAP)

#: Every named format, in the order reports and generated files list them.
FORMATS = {"ACT": ACT, "WEIGHT": WEIGHT, "ACC": ACC, "PROB": PROB, "BIAS": BIAS, "SUM": SUM,
           "NORM": NORM, "ATTN": ATTN, "SLM_PIXEL": SLM_PIXEL, "CAMERA_PIXEL": CAMERA_PIXEL,
           "AMPLITUDE": AMPLITUDE, "OPTICAL_SCALE": OPTICAL_SCALE, "OPTICAL_ACC": OPTICAL_ACC}
