"""Fixed sites for the multipliers of a design, on yosys's netlist.

The LFE5U-85F has its 156 MULT18X18D sites in three rows across the chip. Left to HeAP, a
whole top (123 multipliers) ends with one small kernel's three or four multipliers as far
as 90 columns apart, and the wires between them and the adders they feed take most of a
10 ns cycle. Here every multiplier gets a site (nextpnr's ``BEL`` attribute, which its
placers honour as given): in name order, so each module's multipliers are side by side and
a unit's modules follow one another, spread evenly over all the sites (the spare ones
between them, not left at the end), along rows that snake so the list's neighbours are
the chip's, and no block of four gets more clock, enable or reset signals than it has.
The placer then brings the logic to them.
"""

from __future__ import annotations

import re

from scripts.common import ToolError

#: Rows of multiplier blocks, and the column of each block in a row.
DSP_ROWS = (10, 34, 58)
DSP_BLOCK_COLUMNS = (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
#: A block's four MULT18X18D sites: their column after the block's, and their name.
DSP_BLOCK = ((0, "MULT18_0"), (1, "MULT18_1"), (4, "MULT18_4"), (5, "MULT18_5"))
#: The multipliers of a block share its clock, enable and reset lines: at most four
#: distinct signals of each kind (nextpnr refuses a block with more).
CONTROLS = {"CLK": 4, "CE": 4, "RST": 4}


def multiplier_blocks() -> list[list[str]]:
    """Every block's MULT18X18D sites as nextpnr names them, row after row, every other row
    right to left."""
    blocks = []
    for index, row in enumerate(DSP_ROWS):
        line = [[f"X{column + offset}/Y{row}/{name}" for offset, name in DSP_BLOCK]
                for column in DSP_BLOCK_COLUMNS]
        blocks += [block[::-1] for block in line[::-1]] if index % 2 else line
    return blocks


def _controls(cell: dict) -> dict:
    """The clock, enable and reset signals a MULT18X18D's registers may use, by kind."""
    return {kind: {tuple(bits) for port, bits in cell["connections"].items()
                   if port.rstrip("0123") == kind} for kind in CONTROLS}


def place_multipliers(netlist: dict, top: str) -> int:
    """Give every MULT18X18D of module ``top`` a site, in place; returns how many.

    The k-th multiplier in name order goes to the k-th block of an even spread, or the next
    block that has a free site and room for its control signals (`CONTROLS`). Numbers in
    names compare as numbers: yosys numbers a module's products in the order they are
    made, so a lane's (``$98``, ``$99``, ``$100``) stay side by side."""
    cells = netlist["modules"][top]["cells"]
    names = sorted((n for n, c in cells.items() if c["type"] == "MULT18X18D"),
                   key=lambda name: [int(part) if part.isdigit() else part
                                     for part in re.split(r"(\d+)", name)])
    blocks, per_block = multiplier_blocks(), len(DSP_BLOCK)
    if len(names) > len(blocks) * per_block:
        raise ToolError(f"{len(names)} multipliers, but the device has "
                        f"{len(blocks) * per_block} sites: use fewer (a narrower tile) or "
                        "multiply in the fabric")
    taken = [[] for _ in blocks]
    signals = [{kind: set() for kind in CONTROLS} for _ in blocks]
    for k, name in enumerate(names):
        wanted = _controls(cells[name])
        start = k * len(blocks) // len(names)
        for b in [*range(start, len(blocks)), *range(start)]:
            merged = {kind: signals[b][kind] | wanted[kind] for kind in CONTROLS}
            if len(taken[b]) < per_block and all(len(v) <= CONTROLS[kind]
                                                 for kind, v in merged.items()):
                taken[b].append(name)
                signals[b] = merged
                break
        else:
            raise ToolError(f"no multiplier block has room for {name} and its clock, "
                            "enable and reset signals: leave the design's placement to "
                            "nextpnr (floorplan=False)")
    for block, names_in in zip(blocks, taken, strict=True):
        for site, name in zip(block, names_in, strict=False):
            cells[name]["attributes"]["BEL"] = site
    return len(names)
