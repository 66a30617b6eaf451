"""Arithmetic building blocks shaped for the ECP5: registered adder trees, wide products in
18-bit multipliers, multiplies by constants in adders, and saturation."""

from amaranth.hdl import Module, Mux, Signal, signed

from pyref.formats import ACC


def registered_sum(m: Module, terms: list, name: str, shape=None) -> tuple:
    """Add ``terms`` in a tree with a register after each level, so each stage holds one
    carry chain. Returns the sum, of ``shape`` (`ACC` if none), and the levels (its
    latency)."""
    shape = ACC.shape() if shape is None else shape
    levels = 0
    while len(terms) > 1:
        pairs = [terms[k:k + 2] for k in range(0, len(terms), 2)]
        sums = [Signal(shape, name=f"{name}{levels}_{k}", reset_less=True)
                for k in range(len(pairs))]
        m.d.sync += [total.eq(sum(pair)) for total, pair in zip(sums, pairs, strict=True)]
        terms, levels = sums, levels + 1
    return terms[0], levels


def limb_partials(m: Module, x, y, name: str, far: bool = False):
    """``x * y`` a cycle later as an unregistered sum of registered partial products, for a
    signed ``x`` of any width and ``y`` of at most 17 bits: each 17-bit limb of ``x`` times
    ``y`` is one MULT18X18D with its output register.

    With ``far``, two cycles later: the partial products are registered again in the
    fabric, so the multipliers (in a few rows of the chip, taken by every unit) may sit a
    cycle's wire away from the adders that sum them."""
    limbs = -(-(len(x) - 1) // 17)
    partials = []
    for i in range(limbs):
        top = i == limbs - 1
        limb = x[17 * i:] if top else x[17 * i:17 * (i + 1)]
        partial = Signal(signed(len(limb) + len(y) + 1), name=f"{name}_limb{i}",
                         reset_less=True)
        m.d.sync += partial.eq((limb.as_signed() if top else limb) * y)
        if far:
            near = Signal.like(partial, name=f"{name}_near{i}")
            m.d.sync += near.eq(partial)
            partial = near
        partials.append(partial)
    return sum(p << (17 * i) for i, p in enumerate(partials))


def limb_product(m: Module, x, y, name: str, far: bool = False):
    """``x * y`` two cycles later (three with ``far``): `limb_partials`, then their
    registered sum."""
    total = Signal(signed(len(x) + len(y) + 1), name=name, reset_less=True)
    m.d.sync += total.eq(limb_partials(m, x, y, name, far))
    return total


def times_constant(value, constant: int):
    """``value * constant`` as a sum of shifted copies of ``value``, one per set bit of the
    constant: adders, where a multiply would take a DSP block and its routing."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return sum(terms) if terms else 0


def saturate(value, fmt):
    """``value`` clamped to the codes of `QFormat` ``fmt`` (its overflow rule, saturate)."""
    return Mux(value > fmt.max_code, fmt.max_code, Mux(value < fmt.min_code, fmt.min_code, value))
