"""Fixed sites for the multipliers of a design, on yosys's netlist.

The LFE5U-85F has its 156 MULT18X18D sites in three rows across the chip. Left to HeAP, a
whole top (123 multipliers) ends with one small kernel's three or four multipliers as far
as 90 columns apart, and the wires between them and the adders they feed take most of a
10 ns cycle. Here every multiplier gets a site (nextpnr's ``BEL`` attribute, which its
placers honour as given): in name order, so each module's multipliers are side by side and
a unit's modules follow one another, spread evenly over all the sites (the spare ones
between them, not left at the end), along rows that snake so the list's neighbours are
the chip's. The placer then brings the logic to them.
"""

from __future__ import annotations

from scripts.common import ToolError

#: Rows of multiplier blocks, and the column of each block in a row.
DSP_ROWS = (10, 34, 58)
DSP_BLOCK_COLUMNS = (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
#: A block's four MULT18X18D sites: their column after the block's, and their name.
DSP_BLOCK = ((0, "MULT18_0"), (1, "MULT18_1"), (4, "MULT18_4"), (5, "MULT18_5"))


def multiplier_sites() -> list[str]:
    """Every MULT18X18D site as nextpnr names it, row after row, every other row right to
    left."""
    sites = []
    for index, row in enumerate(DSP_ROWS):
        line = [f"X{column + offset}/Y{row}/{name}" for column in DSP_BLOCK_COLUMNS
                for offset, name in DSP_BLOCK]
        sites += line[::-1] if index % 2 else line
    return sites


def place_multipliers(netlist: dict, top: str) -> int:
    """Give every MULT18X18D of module ``top`` a site, in place; returns how many."""
    cells = netlist["modules"][top]["cells"]
    names = sorted(n for n, c in cells.items() if c["type"] == "MULT18X18D")
    sites = multiplier_sites()
    if len(names) > len(sites):
        raise ToolError(f"{len(names)} multipliers, but the device has {len(sites)} "
                             "sites: use fewer (a narrower tile) or multiply in the fabric")
    for k, name in enumerate(names):
        cells[name]["attributes"]["BEL"] = sites[k * len(sites) // len(names)]
    return len(names)
