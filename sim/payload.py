"""Pack and unpack stream payloads from the port descriptions that `hw.emit` writes."""


def _to_signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value


def pack(shape: dict, value) -> int:
    """Encode ``value`` (int, dict of fields or list of elements) as the payload's bits."""
    kind, width = shape["kind"], shape["width"]
    if kind == "int":
        if shape["signed"]:
            lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        else:
            lo, hi = 0, (1 << width) - 1
        if not lo <= int(value) <= hi:
            raise ValueError(f"value {value} does not fit a {width}-bit "
                             f"{'signed' if shape['signed'] else 'unsigned'} field")
        return int(value) & ((1 << width) - 1)
    if kind == "struct":
        missing = set(shape["fields"]) - set(value)
        if missing:
            raise ValueError(f"payload lacks fields {sorted(missing)}")
        return sum(pack(f["shape"], value[name]) << f["offset"]
                   for name, f in shape["fields"].items())
    elem = shape["elem"]
    if len(value) != shape["length"]:
        raise ValueError(f"array payload needs {shape['length']} elements, got {len(value)}")
    return sum(pack(elem, v) << (k * elem["width"]) for k, v in enumerate(value))


def unpack(shape: dict, bits: int):
    """Decode payload bits into an int, a dict of fields or a list of elements."""
    kind, width = shape["kind"], shape["width"]
    bits &= (1 << width) - 1
    if kind == "int":
        return _to_signed(bits, width) if shape["signed"] else bits
    if kind == "struct":
        return {name: unpack(f["shape"], bits >> f["offset"])
                for name, f in shape["fields"].items()}
    elem = shape["elem"]
    return [unpack(elem, bits >> (k * elem["width"])) for k in range(shape["length"])]
