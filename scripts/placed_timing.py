"""The slowest paths of a placed, unrouted design: where to pipeline before routing.

nextpnr reports paths only after routing, which on the whole top takes longer than
placement. This times the placement it writes (``--no-route --write placed.json --sdf
placed.sdf``): cell delays from the SDF, and for each connection nextpnr's own estimate
for an unrouted arc (``Arch::predictDelay`` of nextpnr-ecp5: 120 ps per tile beyond five,
240 within, 360 to start). Reset inputs (LSR) are left out: the board's reset runs on a
global network. Usage: ``python -m scripts.bitstream --place-only <design>``, or
``python -m scripts.placed_timing <build dir> [paths]`` on a placement written before.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

#: Cell inputs that clock a register: a path starts at the output they time.
CLOCKS = {"CLK", "CLKA", "CLKB", "WCK", "CLK0", "CLK1", "CLK2", "CLK3"}
#: Picoseconds per unit of nextpnr-ecp5's unrouted estimate (its slowest speed grade).
PS_PER_STEP = 120


def _plain(name: str) -> str:
    """A cell name as the SDF escapes it, and as the JSON spells it, made the same."""
    return name.replace("\\", "")


def cell_delays(sdf_text: str) -> dict:
    """``{(cell, output): [(input, ps)]}``: every IOPATH of the SDF, at its slowest."""
    paths, cell = defaultdict(list), None
    for m in re.finditer(r"\(INSTANCE ([^)]*)\)|\(IOPATH (\S+) (\S+) \(\d+:\d+:(\d+)\)",
                         sdf_text):
        if m.group(1) is not None:
            cell = _plain(m.group(1).strip())
        else:
            paths[(cell, m.group(3))].append((m.group(2), int(m.group(4))))
    return paths


def arc_estimate(source: tuple, sink: tuple, driver_port: str, sink_port: str) -> int:
    """nextpnr-ecp5's estimate in ps of an unrouted arc between two tile locations."""
    if (driver_port, sink_port) in (("FCO", "FCI"), ("F", "DI")) or sink_port in ("FXA", "FXB"):
        return 0  # dedicated wires inside a slice
    dx, dy = abs(source[0] - sink[0]), abs(source[1] - sink[1])
    return PS_PER_STEP * (3 + max(dx - 5, 0) + max(dy - 5, 0)
                          + 2 * (min(dx, 5) + min(dy, 5)))


def _module(cell: str) -> str:
    """The module a cell of the flattened netlist came from: its name up to the last dot."""
    return cell.rpartition(".")[0]


def slowest_paths(placed: dict, sdf_text: str, count: int = 10) -> list[dict]:
    """The ``count`` latest-arriving register inputs of the placed design, each with the
    path to it: ``{"ns", "to", "path": [{"ns", "x", "y", "pin"}]}``. Only the slowest path
    from each module to each module is kept: a wide register's bits would otherwise fill
    the list with one path."""
    top = next(iter(placed["modules"].values()))
    location, ports, kind = {}, {}, {}
    for name, cell in top["cells"].items():
        name = _plain(name)
        bel = cell["attributes"].get("NEXTPNR_BEL", "X0/Y0/")
        x, y, _ = bel.split("/", 2)
        location[name] = (int(x[1:]), int(y[1:]))
        kind[name] = cell["type"]
        ports[name] = {p: (cell["port_directions"][p], bits)
                       for p, bits in cell["connections"].items()}
    driver, net_of = {}, {}
    for name, cell_ports in ports.items():
        for port, (direction, bits) in cell_ports.items():
            if len(bits) == 1 and isinstance(bits[0], int):
                net_of[(name, port)] = bits[0]
                if direction == "output":
                    driver[bits[0]] = (name, port)
    delays = cell_delays(sdf_text)
    arrival, before = {}, {}

    def arrive(pin):
        # Iterative depth-first: a carry chain is hundreds of pins deep.
        stack = [pin]
        while stack:
            top_pin = stack[-1]
            if top_pin in arrival:
                stack.pop()
                continue
            name, port = top_pin
            if ports[name][port][0] == "output":
                sources = [((name, f), d) for f, d in delays.get(top_pin, []) if f not in CLOCKS]
                starts = [d for f, d in delays.get(top_pin, []) if f in CLOCKS]
            else:
                net = net_of.get(top_pin)
                source = driver.get(net)
                # Global buffers (clocks, the board's reset) are not timed here.
                sources = ([(source, arc_estimate(location[source[0]], location[name],
                                                  source[1], port))]
                           if source and kind[source[0]] != "DCCA" else [])
                starts = []
            waiting = [s for s, _ in sources if s not in arrival]
            if waiting:
                stack.extend(waiting)
                continue
            best, via = max(starts, default=None), None
            for s, d in sources:
                if arrival[s] is not None and (best is None or arrival[s] + d > best):
                    best, via = arrival[s] + d, s
            arrival[top_pin], before[top_pin] = best, via
            stack.pop()
        return arrival[pin]

    # Endpoints: register inputs, the cell inputs no IOPATH starts from.
    feeds = defaultdict(set)
    for (cell, _), v in delays.items():
        feeds[cell].update(f for f, _ in v)
    ends = []
    for name, cell_ports in ports.items():
        for port, (direction, _) in cell_ports.items():
            pin = (name, port)
            if (direction == "input" and pin in net_of and port not in CLOCKS | {"LSR"}
                    and port not in feeds[name] and arrive(pin) is not None):
                ends.append((arrival[pin], pin))
    ends.sort(key=lambda e: -e[0])
    report, seen = [], set()
    for ps, pin in ends:
        if len(report) == count:
            break
        chain = []
        while pin is not None:
            chain.append(pin)
            pin = before[pin]
        modules = (_module(chain[-1][0]), _module(chain[0][0]))
        if modules in seen:
            continue
        seen.add(modules)
        report.append({"ns": round(ps / 1000, 2), "to": ".".join(chain[0]),
                       "path": [{"ns": round(arrival[p] / 1000, 2), "x": location[p[0]][0],
                                 "y": location[p[0]][1], "pin": ".".join(p)}
                                for p in reversed(chain)]})
    return report


def report_paths(directory: Path, count: int = 10) -> list[dict]:
    """Time ``directory``'s placed.json and placed.sdf; write placed_paths.json there."""
    placed, sdf = directory / "placed.json", directory / "placed.sdf"
    for path in (placed, sdf):
        if not path.exists():
            raise SystemExit(f"error: {path} is missing: run `python -m scripts.bitstream "
                             f"--place-only {directory.name}` first")
    paths = slowest_paths(json.loads(placed.read_text()), sdf.read_text(), count)
    (directory / "placed_paths.json").write_text(json.dumps(paths, indent=2) + "\n")
    return paths


def print_paths(paths: list[dict], out=sys.stdout):
    for p in paths:
        print(f"{p['ns']:6.2f} ns ({1000 / p['ns']:.1f} MHz) to {p['to']}", file=out)
        for step in p["path"]:
            print(f"   {step['ns']:6.2f}  ({step['x']:3}, {step['y']:3})  {step['pin']}", file=out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print_paths(report_paths(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10))
