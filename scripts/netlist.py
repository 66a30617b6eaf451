"""Pack pipeline registers into the ECP5's multipliers and block RAMs, on yosys's netlist.

yosys's ``synth_ecp5`` maps every multiply to a combinational MULT18X18D and every block
RAM read to a DP16KD without its output register, and leaves the registers around them in
the fabric. A combinational multiplier between two fabric registers caps the clock near
133 MHz, a block RAM's unregistered output near 140 MHz. This pass moves those registers
into the hard blocks, as vendor tools do:

* a MULT18X18D's A or B operand register, when every non-constant bit of the operand comes
  from a flip-flop (the fabric flip-flop stays if anything else reads it);
* its output register, when every used product bit feeds exactly one flip-flop and nothing
  else;
* a DP16KD read port's output register (``REGMODE=OUTREG``), likewise.

Qualifying flip-flops share one clock, one clock enable and one synchronous reset to 0; a
flip-flop with both an enable and a reset does not qualify (which of the two wins in a hard
register is not documented), nor does one that sets to 1. The cycle-by-cycle behaviour is
unchanged: a hard register samples the same signal on the same edge as the fabric register
it replaces.
"""

from __future__ import annotations

from collections import defaultdict

#: Register groups of a MULT18X18D: operand pins, then the parameters naming their clock and
#: clock enable.
DSP_INPUTS = {"A": ("REG_INPUTA_CLK", "REG_INPUTA_CE", "REG_INPUTA_RST"),
              "B": ("REG_INPUTB_CLK", "REG_INPUTB_CE", "REG_INPUTB_RST")}
DSP_OUTPUT = ("REG_OUTPUT_CLK", "REG_OUTPUT_CE", "REG_OUTPUT_RST")


def _is_net(bit) -> bool:
    return isinstance(bit, int)


class _Module:
    """One netlist module with indices from nets to the pins that drive and read them."""

    def __init__(self, module: dict):
        self.cells = module["cells"]
        self.drivers, self.loads = {}, defaultdict(list)
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                direction = cell["port_directions"][port]
                for index, bit in enumerate(bits):
                    if _is_net(bit):
                        if direction == "output":
                            self.drivers[bit] = (name, port, index)
                        else:
                            self.loads[bit].append((name, port, index))
        for port in module["ports"].values():  # a module output is a load no pass may move
            if port["direction"] != "input":
                for bit in port["bits"]:
                    if _is_net(bit):
                        self.loads[bit].append(("<port>", "", 0))

    def plain_ff(self, name: str):
        """``(clock, enable, reset)`` of flip-flop ``name`` if a hard register can stand in
        for it, else None. ``enable`` is a net or "1"; ``reset`` a net or "0"."""
        cell = self.cells.get(name)
        if cell is None or cell["type"] != "TRELLIS_FF":
            return None
        params, pins = cell["parameters"], cell["connections"]
        if params.get("CLKMUX", "CLK").strip() != "CLK" or params.get("GSR") == "ENABLED":
            return None
        enable = "1" if params.get("CEMUX", "1").strip() == "1" else pins["CE"][0]
        reset = pins.get("LSR", ["0"])[0] if params.get("LSRMUX", "LSR").strip() == "LSR" else "0"
        if reset != "0" and (enable != "1" or params.get("REGSET", "RESET") != "RESET"
                             or params.get("SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE"):
            return None
        return pins["CLK"][0], enable, reset

    def operand_ffs(self, cell: dict, pins: list[str]):
        """The flip-flops behind ``pins`` (constants allowed) if they share their controls:
        ``(controls, {pin: flip-flop})``, else None."""
        found, controls = {}, set()
        for pin in pins:
            bit = cell["connections"].get(pin, ["x"])[0]
            if not _is_net(bit):
                continue
            name, port, _ = self.drivers.get(bit, (None, None, None))
            control = self.plain_ff(name) if port == "Q" else None
            if control is None:
                return None
            found[pin] = name
            controls.add(control)
        if len(controls) != 1:
            return None
        return controls.pop(), found

    def result_ffs(self, cell: dict, pins: list[str]):
        """The one flip-flop each used pin of ``pins`` feeds, if that is all it feeds and they
        share their controls: ``(controls, {pin: flip-flop})``, else None."""
        found, controls = {}, set()
        for pin in pins:
            bit = cell["connections"].get(pin, ["x"])[0]
            loads = self.loads.get(bit, []) if _is_net(bit) else []
            if not loads:
                continue
            if len(loads) != 1 or loads[0][1] != "DI":
                return None
            control = self.plain_ff(loads[0][0])
            if control is None:
                return None
            found[pin] = loads[0][0]
            controls.add(control)
        if len(controls) != 1:
            return None
        return controls.pop(), found

    def absorb_result(self, cell: dict, found: dict):
        """The hard register replaces each flip-flop: its pin now drives the flip-flop's Q."""
        for pin, ff in found.items():
            cell["connections"][pin] = list(self.cells[ff]["connections"]["Q"])
            del self.cells[ff]


def _dsp_controls(cell: dict, controls: tuple, used: dict) -> tuple | None:
    """Pins ``CLKn``, ``CEn`` and ``RSTn`` of a MULT18X18D for a register with ``controls``
    (clock, enable, reset), shared with its other registers through ``used``; None when the
    four pins of a kind are taken."""
    names = []
    for kind, net in zip(("CLK", "CE", "RST"), controls, strict=True):
        pins = used.setdefault(kind, {})
        if net not in pins:
            if len(pins) == 4:
                return None
            pins[net] = f"{kind}{len(pins)}"
        names.append(pins[net])
    for kind, net in zip(("CLK", "CE", "RST"), controls, strict=True):
        cell["connections"][used[kind][net]] = [net]
        cell["port_directions"][used[kind][net]] = "input"
    return tuple(names)


def _pack_dsp(module: _Module, name: str, counts: dict):
    cell = module.cells[name]
    params = cell["parameters"]
    if any(params.get(p, "NONE") != "NONE" for p in
           ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_PIPELINE_CLK", "REG_OUTPUT_CLK")):
        return  # configured by hand: leave it alone
    used = {}
    # Both operands get their registers or neither: nextpnr times a block with one
    # registered operand as if neither were. A constant operand takes the other's controls.
    operands = {}
    for operand in DSP_INPUTS:
        pins = [f"{operand}{i}" for i in range(18)]
        constant = not any(_is_net(cell["connections"].get(p, ["x"])[0]) for p in pins)
        operands[operand] = (None, {}) if constant else module.operand_ffs(cell, pins)
    if all(found is not None for found in operands.values()):
        controls = [own for own, _ in operands.values() if own is not None]
        chosen = {operand: _dsp_controls(cell, own or controls[0], used)
                  for operand, (own, _) in operands.items()} if controls else {}
        if chosen and None not in chosen.values():
            for operand, settings in DSP_INPUTS.items():
                for pin, ff in operands[operand][1].items():
                    cell["connections"][pin] = list(module.cells[ff]["connections"]["DI"])
                params.update(zip(settings, chosen[operand], strict=True))
                counts["dsp_operand_registers"] += 1
    after = module.result_ffs(cell, [f"P{i}" for i in range(36)])
    pins = after and _dsp_controls(cell, after[0], used)
    if pins is not None:
        module.absorb_result(cell, after[1])
        params.update(zip(DSP_OUTPUT, pins, strict=True))
        counts["dsp_output_registers"] += 1
    if used:
        for n in range(4):  # unused resets stay low
            cell["connections"].setdefault(f"RST{n}", ["0"])
            cell["port_directions"].setdefault(f"RST{n}", "input")
        params["RESETMODE"] = "SYNC"  # like the fabric flip-flops it replaces


def _pack_bram(module: _Module, name: str, counts: dict):
    cell = module.cells[name]
    params, pins = cell["parameters"], cell["connections"]
    for port in "AB":
        if params.get(f"REGMODE_{port}", "NOREG") != "NOREG":
            continue
        # At 36 bits a read spans both ports' pins: only a port of at most 18 is its own.
        if int(params.get(f"DATA_WIDTH_{port}", "0") or "0", 2) > 18:
            continue
        if pins.get(f"OCE{port}", ["1"])[0] != "1" or pins.get(f"RST{port}", ["0"])[0] != "0":
            continue
        after = module.result_ffs(cell, [f"DO{port}{i}" for i in range(18)])
        if after is None:
            continue
        (clock, enable, reset), found = after
        # The output register shares the port's clock; its enable is OCE. The port's reset
        # mode is shared with the read itself, so only reset-less registers move.
        if clock != pins.get(f"CLK{port}", ["x"])[0] or reset != "0":
            continue
        module.absorb_result(cell, found)
        pins[f"OCE{port}"] = [enable]
        params[f"REGMODE_{port}"] = "OUTREG"
        counts["bram_output_registers"] += 1


def pack_registers(netlist: dict, top: str) -> dict:
    """Move registers into the MULT18X18D and DP16KD cells of module ``top``, in place.

    Returns the number of registers packed of each kind.
    """
    counts = {"dsp_operand_registers": 0, "dsp_output_registers": 0,
              "bram_output_registers": 0}
    module = _Module(netlist["modules"][top])
    for name in [n for n, c in module.cells.items() if c["type"] == "MULT18X18D"]:
        _pack_dsp(module, name, counts)
    module = _Module(netlist["modules"][top])  # fresh indices after the rewiring
    for name in [n for n, c in module.cells.items() if c["type"] == "DP16KD"]:
        _pack_bram(module, name, counts)
    _drop_unread_ffs(netlist["modules"][top])
    return counts


def _drop_unread_ffs(module: dict):
    """Delete flip-flops whose output nothing reads any more (their loads moved inside)."""
    index = _Module(module)
    for name in [n for n, c in module["cells"].items() if c["type"] == "TRELLIS_FF"]:
        q = module["cells"][name]["connections"]["Q"][0]
        if not index.loads.get(q):
            del module["cells"][name]
