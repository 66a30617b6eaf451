"""The XLS flow: generated formats, the requantiser's JIT against pyref, and codegen."""

import json

import numpy as np
import pytest

from hls import flow, generated
from pyref import opcases
from pyref.formats import ACC, ACT


def test_generated_dslx_is_fresh():
    assert not generated.stale(), "generated DSLX is stale: run `make hls` and commit it"


def test_stale_generated_dslx_stops_the_flow(monkeypatch):
    monkeypatch.setitem(generated.GENERATED, generated.HERE / "tables.x", lambda: "// other\n")
    flow.optimised_ir.cache_clear()
    with pytest.raises(flow.HlsError, match="stale.*make hls"):
        flow.optimised_ir("requant")
    flow.optimised_ir.cache_clear()


@pytest.mark.parametrize("name", list(flow.KERNELS))
def test_jit_matches_pyref_on_edges_and_random_inputs(name):
    mismatches(name, 50_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", [k for k in flow.KERNELS if k != "gelu"])
def test_jit_matches_pyref_on_a_million_inputs(name):
    mismatches(name, 1_000_000)


def mismatches(name: str, count: int):
    """Run kernel ``name`` in the XLS JIT on pyref's op case and fail on any difference."""
    case = opcases.OPCASES[name]
    inputs = case.draw(np.random.default_rng(2), count)
    want = case.reference(**inputs)
    got = flow.jit(name)(**inputs)
    for output, expected in want.items():
        bad = np.flatnonzero(got[output] != expected)
        first = {k: int(v[bad[0]]) for k, v in inputs.items()} if bad.size else None
        assert bad.size == 0, (f"{name}.{output}: {bad.size} mismatches, first at {first}: "
                               f"got {got[output][bad[0]]}, want {expected[bad[0]]}")


def test_gelu_case_is_exhaustive():
    x = opcases.OPCASES["gelu"].draw(np.random.default_rng(0), 0)["x"]
    assert np.array_equal(np.sort(x), np.arange(ACT.min_code, ACT.max_code + 1))


def test_jit_rejects_codes_outside_the_input_format():
    with pytest.raises(Exception, match="outside"):
        flow.jit("requant")(x=np.array([1 << 50]))


def test_codegen_writes_a_pipeline_and_its_description(tmp_path):
    verilog = flow.codegen("requant", tmp_path)
    text = verilog.read_text()
    # Plain registers: the valid travels beside the pipeline (hw/xls_pipe.py).
    assert "module requant(" in text and "valid" not in text and "rst" not in text
    meta = json.loads((tmp_path / "requant.json").read_text())
    kernel = flow.KERNELS["requant"]
    assert meta["latency"] == kernel.latency == kernel.stages - 1 + 2 * flow.FLOP_IO
    assert meta["inputs"]["x"] == ACC.describe() and meta["outputs"]["y"] == ACT.describe()


def test_every_pipeline_the_hardware_uses_compiles(tmp_path):
    names = flow.all_pipelines()
    assert not set(names) & set(flow.COMPOSED), "composed kernels are built from their steps"
    assert {s for steps in flow.COMPOSED.values() for s in steps if s in flow.PARTS} \
        <= set(names)
    for name in names:
        assert f"module {name}(" in flow.codegen(name, tmp_path).read_text()
    with pytest.raises(flow.HlsError, match="built from"):
        flow.codegen("gelu", tmp_path)


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
