"""Emit a component as Verilog, with a JSON description of its ports for the benches.

The description lets cocotb benches pack and unpack stream payloads without importing
the Amaranth design: ``{"ports": {name: {"flow": "in"|"out", "stream": bool, "shape": ...}}}``
where a shape is ``{"kind": "int", "width", "signed"}``, ``{"kind": "struct", "width",
"fields": {name: {"offset", "shape"}}}`` or ``{"kind": "array", "width", "length",
"elem"}``.
"""

import json
import re
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream
from amaranth.lib.wiring import Flow


def describe_shape(shape) -> dict:
    """A JSON-friendly description of an Amaranth shape or data layout."""
    if isinstance(shape, data.StructLayout):
        fields = {name: {"offset": f.offset, "shape": describe_shape(f.shape)}
                  for name, f in shape}
        return {"kind": "struct", "width": shape.size, "fields": fields}
    if isinstance(shape, data.ArrayLayout):
        return {"kind": "array", "width": shape.size, "length": shape.length,
                "elem": describe_shape(shape.elem_shape)}
    cast = Shape.cast(shape)
    return {"kind": "int", "width": cast.width, "signed": cast.signed}


def describe_ports(component) -> dict:
    """Describe every top-level member of ``component``'s signature. A plain interface
    (say a chip's pins) becomes its ports, ``name__member`` as Amaranth names them."""
    return _describe_members(component.signature.members, "", flipped=False)


def _describe_members(members, prefix: str, flipped: bool) -> dict:
    ports = {}
    for name, member in members.items():
        incoming = (member.flow is Flow.In) != flipped
        flow = "in" if incoming else "out"
        if member.is_signature and isinstance(member.signature, stream.Signature):
            shape = describe_shape(member.signature.members["payload"].shape)
            ports[prefix + name] = {"flow": flow, "stream": True, "shape": shape}
        elif member.is_port:
            ports[prefix + name] = {"flow": flow, "stream": False,
                                    "shape": describe_shape(member.shape)}
        else:
            ports.update(_describe_members(member.signature.members, f"{prefix}{name}__",
                                           flipped=incoming))
    return ports


#: An all-zero initialisation of a memory in Amaranth's RTLIL.
_ZERO_MEMINIT = re.compile(r"\n *cell \$meminit_v2 [^\n]*\n(?: *(?:parameter|connect) "
                           r"(?!\\DATA )[^\n]*\n)* *connect \\DATA \d+'0+\n"
                           r"(?: *(?:parameter|connect) [^\n]*\n)* *end\n")


#: A combinational process that only assigns a constant (yosys writes one for constant
#: bits of a signal whose other bits come from logic).
_CONSTANT_ALWAYS = re.compile(r"\n( *)always @\*\n *([^\n;]+ = \d+'[hdbo][0-9a-fA-F_]+;)(?=\n)")


def _sensitive(match: re.Match) -> str:
    """A constant process that reads a register (yosys's own trick elsewhere): an
    ``always @*`` that reads nothing never runs, in Verilator and by the standard."""
    indent, statement = match[1], match[2]
    # The statement's offset in the module text names the register uniquely.
    trigger = f"\\lumoe$always_trigger${match.start()} "
    return (f"\n{indent}reg {trigger}= 1'h0;\n{indent}always @* begin\n"
            f"{indent}  if ({trigger}) begin end\n{indent}  {statement}\n{indent}end")


def to_verilog(component, name: str) -> str:
    """Verilog of ``component``, without the initial values of zero-initialised memories.

    yosys writes a memory's initial value as one statement per word, which for the deep
    buffers (`hw.column_memory.ColumnMemory`, a memory per column) is over a million
    lines: Verilator takes minutes and the WebAssembly yosys runs out of memory. Both
    targets start a memory at zero anyway: Verilator's default ``--x-initial unique`` sets
    every variable to 0 unless ``+verilator+rand+reset`` asks otherwise, and an ECP5 block
    RAM's ``INITVAL`` defaults to 0 in the bitstream.

    yosys writes the constant bits of a partly computed signal as an ``always @*`` that
    reads nothing, which never runs: each such process is made to read a register.
    """
    text = rtlil.convert(component, name=name, emit_src=False)
    # The same yosys script as amaranth.back.verilog.convert, on the trimmed RTLIL.
    text = verilog._convert_rtlil_text(_ZERO_MEMINIT.sub("\n", text))
    return _CONSTANT_ALWAYS.sub(_sensitive, text)


def emit(component, name: str, outdir: Path, **extra) -> Path:
    """Write ``<outdir>/<name>.v`` and ``<outdir>/<name>.ports.json``; returns the .v path.

    ``extra`` goes into the JSON unchanged (parameters a bench needs, such as lanes).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.v"
    path.write_text(to_verilog(component, name))
    info = {"module": name, "ports": describe_ports(component), **extra}
    (outdir / f"{name}.ports.json").write_text(json.dumps(info, indent=2) + "\n")
    return path
