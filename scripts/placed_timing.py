"""The slowest paths of a placed or routed design: where to pipeline.

nextpnr reports one path per clock after routing, and none before it, while routing the
whole top takes longer than placing it. This times the placement it writes (``--no-route
--write placed.json --sdf placed.sdf``): cell delays from the SDF, and for each connection
nextpnr's own estimate for an unrouted arc (``Arch::predictDelay`` of nextpnr-ecp5: 120 ps
per tile beyond five, 240 within, 360 to start). A routed design (``routed.json`` and
``routed.sdf``, which every full build writes) is timed the same way with its routed wire
delays, the SDF's INTERCONNECT entries, and its late endpoints are counted by module: what
to pipeline for a clock. Reset inputs (LSR) are left out: the board's reset runs on a global
network. Usage: ``python -m scripts.bitstream --place-only <design>``, or ``python -m
scripts.placed_timing <build dir> [paths] [--routed]`` on a build written before.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

#: Cell inputs that clock a register: a path starts at the output they time.
CLOCKS = {"CLK", "CLKA", "CLKB", "WCK", "CLK0", "CLK1", "CLK2", "CLK3"}
#: Picoseconds per unit of nextpnr-ecp5's unrouted estimate (its slowest speed grade).
PS_PER_STEP = 120


def _plain(name: str) -> str:
    """A cell name as the SDF escapes it, and as the JSON spells it, made the same."""
    return name.replace("\\", "")


def sdf_delays(sdf_text: str) -> tuple[dict, dict]:
    """``({(cell, output): [(input, ps)]}, {(cell, input): ps})``: every IOPATH of the SDF
    and every INTERCONNECT (a wire into a cell's input), each at its slowest."""
    paths, wires, cell = defaultdict(list), {}, None
    for m in re.finditer(r"\(INSTANCE ([^)]*)\)|\(IOPATH (\S+) (\S+) \(\d+:\d+:(\d+)\)"
                         r"|\(INTERCONNECT \S+ (\S+) \(\d+:\d+:(\d+)\)", sdf_text):
        if m.group(1) is not None:
            cell = _plain(m.group(1).strip())
        elif m.group(2) is not None:
            paths[(cell, m.group(3))].append((m.group(2), int(m.group(4))))
        else:
            sink, _, port = _plain(m.group(5)).rpartition("/")
            wires[(sink, port)] = int(m.group(6))
    return paths, wires


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


class Timing:
    """Arrival times at every pin of a placed (or routed) design.

    Parameters
    ----------
    placed : dict
        nextpnr's JSON of the design (``--write``), with each cell's bel.
    sdf_text : str
        nextpnr's SDF of the same design.
    routed : bool
        Time wires by the SDF's INTERCONNECT delays (a routed design; nextpnr writes one
        for every routed connection) instead of nextpnr's estimate for an unrouted arc.
    """

    def __init__(self, placed: dict, sdf_text: str, routed: bool = False):
        top = next(iter(placed["modules"].values()))
        self.location, ports, kind = {}, {}, {}
        for name, cell in top["cells"].items():
            name = _plain(name)
            bel = cell["attributes"].get("NEXTPNR_BEL", "X0/Y0/")
            x, y, _ = bel.split("/", 2)
            self.location[name] = (int(x[1:]), int(y[1:]))
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
        delays, wires = sdf_delays(sdf_text)

        def wire(source, sink):
            if routed:
                return wires.get(sink, 0)
            return arc_estimate(self.location[source[0]], self.location[sink[0]],
                                source[1], sink[1])

        self.arrival, self.before = {}, {}
        arrival, before = self.arrival, self.before

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
                    sources = [((name, f), d) for f, d in delays.get(top_pin, [])
                               if f not in CLOCKS]
                    starts = [d for f, d in delays.get(top_pin, []) if f in CLOCKS]
                else:
                    source = driver.get(net_of.get(top_pin))
                    # Global buffers (clocks, the board's reset) are not timed here.
                    sources = ([(source, wire(source, top_pin))]
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

        # Endpoints: register inputs, the cell inputs no IOPATH starts from. Pins leave
        # the chip unclocked (nextpnr times them as asynchronous too).
        feeds = defaultdict(set)
        for (cell, _), v in delays.items():
            feeds[cell].update(f for f, _ in v)
        ends = [pin for name, cell_ports in ports.items()
                for port, (direction, _) in cell_ports.items()
                for pin in [(name, port)]
                if direction == "input" and pin in net_of and port not in CLOCKS | {"LSR"}
                and port not in feeds[name] and kind[name] != "TRELLIS_IO"
                and arrive(pin) is not None]
        #: Register inputs, latest first.
        self.ends = sorted(ends, key=lambda pin: -arrival[pin])

    def path(self, pin: tuple) -> list[tuple]:
        """The pins of the slowest path to ``pin``, from where it starts."""
        chain = []
        while pin is not None:
            chain.append(pin)
            pin = self.before[pin]
        return chain[::-1]


def slowest_paths(timing: Timing, count: int = 10) -> list[dict]:
    """The ``count`` latest-arriving register inputs, each with the path to it: ``{"ns",
    "to", "path": [{"ns", "x", "y", "pin"}]}``. Only the slowest path from each module to
    each module is kept: a wide register's bits would otherwise fill the list with one
    path."""
    report, seen = [], set()
    for pin in timing.ends:
        if len(report) == count:
            break
        chain = timing.path(pin)
        modules = (_module(chain[0][0]), _module(chain[-1][0]))
        if modules in seen:
            continue
        seen.add(modules)
        report.append({"ns": round(timing.arrival[pin] / 1000, 2), "to": ".".join(pin),
                       "path": [{"ns": round(timing.arrival[p] / 1000, 2),
                                 "x": timing.location[p[0]][0], "y": timing.location[p[0]][1],
                                 "pin": ".".join(p)} for p in chain]})
    return report


def late_modules(timing: Timing, period_ps: float) -> list[dict]:
    """Register inputs that arrive after ``period_ps``, counted by the module of the
    register: ``[{"module", "late", "ns"}]``, most first, with each module's latest."""
    late, worst = Counter(), {}
    for pin in timing.ends:
        ps = timing.arrival[pin]
        if ps <= period_ps:
            break
        module = _module(pin[0]) or "(top)"
        late[module] += 1
        worst.setdefault(module, ps)
    return [{"module": m, "late": n, "ns": round(worst[m] / 1000, 2)}
            for m, n in late.most_common()]


def report_paths(directory: Path, target_mhz: float, count: int = 10, routed: bool = False
                 ) -> dict:
    """Time the placement (or the routing) in build ``directory``; write its slowest paths
    and its register inputs late for ``target_mhz``, by module, to ``placed_paths.json``
    (``routed_paths.json``) there, and return them."""
    stage = "routed" if routed else "placed"
    files = [directory / f"{stage}.json", directory / f"{stage}.sdf"]
    for path in files:
        if not path.exists():
            build = "" if routed else "--place-only "
            raise SystemExit(f"error: {path} is missing: run `python -m scripts.bitstream "
                             f"{build}{directory.name}` first")
    placed, sdf = (p.read_text() for p in files)
    timing = Timing(json.loads(placed), sdf, routed)
    report = {"target_mhz": target_mhz, "paths": slowest_paths(timing, count),
              "late": late_modules(timing, 1e6 / target_mhz),
              "file": str(directory / f"{stage}_paths.json")}
    Path(report["file"]).write_text(json.dumps(report, indent=2) + "\n")
    return report


def late_line(module: dict) -> str:
    """One entry of `late_modules`, as the reports print it."""
    return f"  {module['late']:6d}  latest {module['ns']:6.2f} ns  {module['module']}"


def print_report(report: dict, paths: int = 3, modules: int = 15, out=sys.stdout):
    """The first ``paths`` paths of `report_paths`'s report, then its most late modules."""
    for p in report["paths"][:paths]:
        print(f"{p['ns']:6.2f} ns ({1000 / p['ns']:.1f} MHz) to {p['to']}", file=out)
        for step in p["path"]:
            print(f"   {step['ns']:6.2f}  ({step['x']:3}, {step['y']:3})  {step['pin']}", file=out)
    mhz = report["target_mhz"]
    late, clock = report["late"], f"{1000 / mhz:.2f} ns ({mhz:g} MHz)"
    if not late:
        print(f"every register input arrives within {clock}", file=out)
        return
    print(f"{sum(m['late'] for m in late)} register inputs in {len(late)} modules arrive after "
          f"{clock}; the most:", file=out)
    for m in late[:modules]:
        print(late_line(m), file=out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a design's build directory")
    parser.add_argument("paths", type=int, nargs="?", default=10, help="slowest paths to list")
    parser.add_argument("--routed", action="store_true",
                        help="time routed.json and routed.sdf of a full build")
    parser.add_argument("--mhz", type=float, default=None,
                        help="the clock to count late inputs against (default: the design's "
                             "target in scripts/designs.py)")
    args = parser.parse_intermixed_args()
    if args.mhz is None:
        from scripts.designs import BOARDS, DESIGNS
        design = {**DESIGNS, **BOARDS}.get(args.directory.name)
        if design is None:
            parser.error(f"{args.directory.name} is not a design of scripts/designs.py: "
                         "give its clock with --mhz")
        args.mhz = design.target_mhz
    print_report(report_paths(args.directory, args.mhz, args.paths, args.routed), args.paths)
