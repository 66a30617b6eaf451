"""The XLS flow: generated formats, the requantiser's JIT against pyref, and codegen."""

import json

import numpy as np
import pytest

from hls import flow
from hls import generated
from pyref import ops
from pyref.formats import ACC, ACT


def test_generated_dslx_is_fresh():
    assert not generated.stale(), "generated DSLX is stale: run `make hls` and commit it"


def test_stale_generated_dslx_stops_the_flow(monkeypatch):
    monkeypatch.setitem(generated.GENERATED, generated.HERE / "tables.x", lambda: "// other\n")
    flow.optimised_ir.cache_clear()
    with pytest.raises(flow.HlsError, match="stale.*make hls"):
        flow.optimised_ir("requant")
    flow.optimised_ir.cache_clear()


def requant_inputs(rng, count):
    """Random codes over the whole accumulator and near the saturation and rounding points."""
    shift = ACC.frac - ACT.frac
    near = ACT.random(rng, count // 2) << shift
    offsets = rng.integers(-(1 << shift), 1 << shift, size=count // 2, endpoint=True)
    return np.concatenate([ACC.random(rng, count // 2), ACC.fit(near + offsets)])


def requant_edges():
    shift = ACC.frac - ACT.frac
    points = [c << shift for c in (ACT.min_code, ACT.max_code, 0)]
    ties = [(c << shift) + (1 << (shift - 1)) for c in (-3, -2, -1, 0, 1, 2, ACT.max_code)]
    near = np.add.outer(np.array(points + ties + ACC.edges().tolist()), np.arange(-2, 3))
    return ACC.fit(near.ravel())


def test_requant_jit_matches_pyref_on_a_million_inputs_and_every_edge():
    kernel = flow.jit("requant")
    codes = np.concatenate([requant_edges(), requant_inputs(np.random.default_rng(2), 1_000_000)])
    got = kernel(codes)
    want = ops.requantise(codes)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} mismatches, first: acc={codes[bad[0]]} " \
                          f"got {got[bad[0]]} want {want[bad[0]]}"


def test_jit_rejects_codes_outside_the_input_format():
    with pytest.raises(Exception, match="outside"):
        flow.jit("requant")(np.array([1 << 50]))


def test_codegen_writes_a_pipeline_and_its_description(tmp_path):
    verilog = flow.codegen("requant", tmp_path)
    text = verilog.read_text()
    assert "module requant(" in text and "i_valid" in text and "o_valid" in text
    meta = json.loads((tmp_path / "requant.json").read_text())
    kernel = flow.KERNELS["requant"]
    assert meta["latency"] == kernel.latency == kernel.stages - 1
    assert meta["inputs"]["x"] == ACC.describe() and meta["output"] == ACT.describe()


def test_bad_dslx_gets_a_message_naming_the_file(monkeypatch, tmp_path):
    broken = tmp_path / "requant.x"
    broken.write_text("pub fn requant(x: u8) -> u8 { x + }\n")
    monkeypatch.setattr(flow, "HERE", tmp_path)
    flow.optimised_ir.cache_clear()
    try:
        with pytest.raises(flow.HlsError, match="requant.x"):
            flow.optimised_ir("requant")
    finally:
        flow.optimised_ir.cache_clear()
