"""ECP5 flow: the MAC unit becomes a bitstream with a resource and timing report (slow)."""

import json

import pytest
from rich.console import Console

from scripts import bitstream, placed_timing


@pytest.mark.slow
def test_mac_bitstream_and_report(tmp_path):
    report = bitstream.build("mac", seed=1, console=Console(quiet=True), root=tmp_path)
    saved = json.loads((tmp_path / "mac" / "report.json").read_text())
    assert saved == report
    assert {"lut4", "ff", "dsp", "bram", "fmax_mhz", "bitfile"} <= set(report)
    assert report["dsp"] == 4  # one MULT18X18D per lane
    # Both operand registers and the product register of every lane moved into its DSP.
    assert report["packed_registers"] == {"dsp_operand_registers": 8,
                                          "dsp_output_registers": 4, "bram_output_registers": 0}
    assert 0 < report["lut4"] < report["capacity"]["lut4"]
    assert (tmp_path / "mac" / "mac_top.bit").stat().st_size > 100_000
    assert report["target_mhz"] == 100.0 and report["timing_met"] == (report["fmax_mhz"] >= 100)


def test_a_design_too_big_for_the_device_is_named(tmp_path):
    # nextpnr's utilisation table, as it prints it before it gives up on placement.
    log = tmp_path / "nextpnr.log"
    table = ("Info: \t              DP16KD:     311/    208   149%\n"
             "Info: \t          MULT18X18D:     120/    156    76%\n")
    with pytest.raises(bitstream.ToolError, match="needs 311 DP16KD of 208; see"):
        bitstream.step(["python3", "-c", f"print({table!r}); raise SystemExit(1)"], log,
                       "nextpnr-ecp5")


def test_ulx3s_constraints_place_every_pin_on_its_own_site():
    from hw import ulx3s

    text = ulx3s.lpf()
    sites = [line.split('SITE "')[1].rstrip('";') for line in text.splitlines()
             if line.startswith("LOCATE")]
    assert len(sites) == sum(len(s) for _, s in ulx3s.PINS) == len(set(sites)) == 51
    assert 'LOCATE COMP "clk_25mhz" SITE "G2";' in text and "FREQUENCY PORT" in text
    assert 'LOCATE COMP "sdram_d[15]" SITE "J17";' in text


def test_synthesis_only_counts_cells_against_the_device(tmp_path):
    report = bitstream.build("mac", seed=0, console=Console(quiet=True), root=tmp_path,
                             synth_only=True)
    assert report["dsp"] == 4 and report["bram"] == 0 and 0 < report["lut4"] < 2_000
    assert json.loads((tmp_path / "mac" / "synth.json").read_text()) == report
    # A carry cell is two LUT4s.
    cells = {"a": {"type": "LUT4"}, "b": {"type": "CCU2C"}, "c": {"type": "DP16KD"}}
    assert bitstream.synthesis_counts({"cells": cells}) == {
        "lut4": 3, "ff": 0, "dsp": 0, "bram": 1, "dpr16x4": 0}


def test_two_builds_differ_in_the_report_or_the_bitstream(tmp_path):
    def built(name, bits, fmax):
        path = tmp_path / f"{name}.bit"
        path.write_bytes(bits)
        return {"design": "d", "fmax_mhz": fmax, "build_s": len(name), "bitfile": str(path)}
    first = built("first", b"\x01\x02", 101.5)
    assert bitstream.same_build(first, built("second_run", b"\x01\x02", 101.5))
    assert not bitstream.same_build(first, built("other_bits", b"\x01\x03", 101.5))
    assert not bitstream.same_build(first, built("other_fmax", b"\x01\x02", 99.0))


def test_a_board_clock_other_than_its_pll_is_refused(capsys):
    # nextpnr takes the board's clock from the PLL: a --freq would only mislabel the report.
    with pytest.raises(SystemExit) as stopped:
        bitstream.run(["ulx3s", "--freq", "105"])
    assert stopped.value.code == 2
    assert "ulx3s's clock is its PLL's 100 MHz" in capsys.readouterr().err
    assert bitstream.target_mhz("ulx3s", None) == bitstream.target_mhz("ulx3s", 100) == 100
    assert bitstream.target_mhz("mac", 150) == 150


def test_placed_timing_follows_the_slowest_path_placed_or_routed():
    # Two registers ten tiles apart with a LUT beside the second; nextpnr's estimate for
    # an arc of dx = 10 is 120 ps * (3 + 5 + 2 * 5) = 2.16 ns, and F to DI in a slice is 0.
    def cell(kind, x, ports):
        return {"type": kind, "attributes": {"NEXTPNR_BEL": f"X{x}/Y1/SLICEA"},
                "port_directions": {p: d for p, (d, _) in ports.items()},
                "connections": {p: [n] for p, (_, n) in ports.items()}}
    # A third register beside the first, fed by the second, is a slower path between the
    # same two modules than the first's: only the slowest per pair of modules is listed.
    placed = {"modules": {"top": {"cells": {
        "a.first": cell("TRELLIS_FF", 1, {"CLK": ("input", 1), "DI": ("input", 12),
                                          "Q": ("output", 10)}),
        "b.lut": cell("TRELLIS_COMB", 11, {"A": ("input", 10), "F": ("output", 11)}),
        "b.second": cell("TRELLIS_FF", 11, {"CLK": ("input", 1), "DI": ("input", 11),
                                            "Q": ("output", 12)}),
        "a.third": cell("TRELLIS_FF", 1, {"CLK": ("input", 1), "DI": ("input", 12)}),
        # A pin far away leaves the chip: not a register input, so not timed.
        "pad": cell("TRELLIS_IO", 90, {"I": ("input", 12)}),
    }}}}
    sdf = "".join(f"(CELL (INSTANCE {n}) (DELAY (ABSOLUTE (IOPATH {a} {b} (1:2:{d})))))"
                  for n, a, b, d in (("a.first", "CLK", "Q", 500), ("b.second", "CLK", "Q", 500),
                                     ("b.lut", "A", "F", 200)))
    worst, other = placed_timing.slowest_paths(placed_timing.Timing(placed, sdf), 3)
    assert worst["to"] == "b.second.DI" and worst["ns"] == 2.86
    assert [(s["pin"], s["ns"]) for s in worst["path"]] == [
        ("a.first.Q", 0.5), ("b.lut.A", 2.66), ("b.lut.F", 2.86), ("b.second.DI", 2.86)]
    assert other["to"] in ("a.first.DI", "a.third.DI") and other["ns"] == 2.66
    # Routed, the wires take the SDF's INTERCONNECT delays instead of the estimate; at
    # 1.5 ns only the path into b is late.
    routed = placed_timing.Timing(placed, sdf + "".join(
        f"(INTERCONNECT {a} {b} (1:2:{d}))" for a, b, d in (
            ("a.first/Q", "b.lut/A", 900), ("b.second/Q", "a.first/DI", 300),
            ("b.second/Q", "a.third/DI", 400))), routed=True)
    worst, other = placed_timing.slowest_paths(routed, 2)
    assert (worst["to"], worst["ns"], other["to"], other["ns"]) == (
        "b.second.DI", 1.6, "a.third.DI", 0.9)
    assert placed_timing.late_modules(routed, 1500) == [{"module": "b", "late": 1, "ns": 1.6}]
    assert placed_timing.late_modules(routed, 800) == [
        {"module": "b", "late": 1, "ns": 1.6}, {"module": "a", "late": 1, "ns": 0.9}]
