"""cocotb benches in Verilator: every design bit-exact against pyref, stalls included."""

from dataclasses import replace

import pytest

from hls import flow
from hw.linear_datapath import LinearDatapath
from pyref import machine, perf, vectors
from pyref.config import get_config, get_hw_config
from pyref.workload import workload
from scripts.designs import BOARD_DESIGNS, DESIGNS, TOP_DESIGNS
from sim import runner

#: Every kernel at one seed; the MAC and softmax units at two widths; a second seed on a few.
CASES = ([(k, {}, 0) for k in flow.KERNELS]
         + [("mac", {"lanes": 1}, 0), ("mac", {"lanes": 4}, 0), ("softmax", {"lanes": 2}, 0),
            ("residual", {}, 0), ("optical_io", {}, 0)]
         + [("requant", {}, 123), ("softmax_step", {}, 123), ("mac", {"lanes": 4}, 123),
            ("softmax", {"lanes": 3}, 123)])
#: Tests per bench: every data test runs with and without stalls; the softmax bench adds a
#: reset in the middle of a row and a row past its buffer.
TESTS = {"softmax": 4}


def run_case(tmp_path, name, params, seed, waves=False, **bench_args):
    design = replace(DESIGNS[name], params={**DESIGNS[name].params, **params},
                     bench_args={**DESIGNS[name].bench_args, **bench_args})
    sources = design.verilog(tmp_path / "verilog", tmp_path / "hls")
    for vector_set in vectors.GENERATORS:
        vectors.write(vector_set, tmp_path / "vectors", seed)
    return runner.run(design.bench_spec(sources), vectors=tmp_path / "vectors",
                      build=tmp_path / "sim", seed=seed, waves=waves)


@pytest.mark.parametrize("name,params,seed", CASES, ids=[f"{n}{p}-{s}" for n, p, s in CASES])
def test_bench_is_bit_exact_with_and_without_stalls(tmp_path, name, params, seed):
    result = run_case(tmp_path, name, params, seed)
    assert (result["tests"], result["failed"], result["mismatches"]) == (TESTS.get(name, 2),
                                                                        0, 0)
    assert result["vectors"] > 0
    # One input per cycle: the ideal counts the pipeline's fill exactly.
    assert result["cycles"] == result["ideal_cycles"]
    if name == "mac":
        assert result["peak_macs_per_cycle"] == params["lanes"]
    for part in result.get("breakdown", {}).values():
        assert part["cycles"] == part["ideal_cycles"]


@pytest.mark.parametrize("hw,seed", [("ecp5-85f", 0), ("edge-moe", 5)])
def test_linear_unit_is_bit_exact_and_hides_weight_loads(tmp_path, hw, seed):
    # The tiny model's layers here; make sim runs m3vit-tiny's as well.
    result = run_case(tmp_path, "linear", {"hw": hw}, seed, configs=["tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    tile_out = get_hw_config(hw).tile_out
    layers = {layer.name: layer
              for layer in get_config("tiny").linear_layers() + vectors.EDGE_LAYERS}
    assert len(result["breakdown"]) == len(layers)
    for name, measured in result["breakdown"].items():
        # A tile's rows load, one per cycle, once the previous tile has moved into the MAC
        # array (tile_delay cycles after its claim): free when a pass has that many more
        # tokens than rows. Never faster than one slot per cycle.
        assert measured["cycles"] >= measured["ideal_cycles"], name
        if layers[name.split(".")[1]].tokens >= tile_out + LinearDatapath.tile_delay:
            assert measured["cycles"] == measured["ideal_cycles"], name


@pytest.mark.parametrize("hw,parallelism,seed", [("ecp5-85f", 2, 0), ("edge-moe", 3, 7),
                                                  ("ecp5-85f", 1, 11)])
def test_attention_unit_is_bit_exact_at_constant_traffic_per_step(tmp_path, hw, parallelism,
                                                                  seed):
    # Tiny's heads: 4 chunks a row on ecp5-85f; on edge-moe one chunk, so every step waits.
    # Three lanes leave a last block of two queries; the edge heads (sim/bench_attention.py)
    # change the row length after a flush.
    result = run_case(tmp_path, "attention", {"hw": hw, "parallelism": parallelism}, seed,
                      configs=["tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    assert result["cycles"] == result["ideal_cycles"]
    traffic = result["breakdown"]["tiny"]["traffic"]
    # Each step reads one key and one value row, and at most one query row, and sends at
    # most one finished row.
    assert traffic["k"] == traffic["v"] == {"rows_per_step": 1.0, "peak_rows_per_step": 1.0}
    assert traffic["q"]["peak_rows_per_step"] == 1.0
    assert traffic["o"]["peak_rows_per_step"] == 1.0


def test_moe_unit_announces_only_the_chosen_experts(tmp_path):
    result = run_case(tmp_path, "moe", {}, 4, configs=["tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    # The moe set never chooses tiny's last expert.
    assert get_config("tiny").experts - 1 not in result["breakdown"]["tiny"]["experts_used"]


def test_expert_combine_is_bit_exact(tmp_path):
    result = run_case(tmp_path, "combine", {}, 2, configs=["tiny", "m3vit-tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    # A queue entry, an output beat or a row chunk per cycle, a cycle between phases and a
    # gap cycle before each expert's outputs (20 experts at most here).
    assert result["ideal_cycles"] <= result["cycles"] <= result["ideal_cycles"] + 60


def test_gather_sends_each_queued_token_at_a_chunk_per_cycle(tmp_path):
    result = run_case(tmp_path, "gather", {}, 3, configs=["tiny", "m3vit-tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    # One cycle per layer from its rows to its first entry.
    assert result["ideal_cycles"] <= result["cycles"] <= result["ideal_cycles"] + 2


def test_layernorm_unit_is_bit_exact_at_a_chunk_per_cycle(tmp_path):
    result = run_case(tmp_path, "layernorm", {}, 5, configs=["tiny", "m3vit-tiny"])
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    # Rows of 4 chunks (tiny) keep many rows' stats in flight at once.
    assert result["cycles"] == result["ideal_cycles"]


def test_scoreboard_counts_every_wrong_result(tmp_path, monkeypatch):
    generate = vectors.GENERATORS["requant"]

    def off_by_one(rng):
        v = generate(rng)
        return {**v, "y": v["y"] + (v["y"] % 7 == 0)}

    monkeypatch.setitem(vectors.GENERATORS, "requant", off_by_one)
    result = run_case(tmp_path, "requant", {}, 0)
    wrong = int((generate(vectors._rng("requant", 0))["y"] % 7 == 0).sum())
    assert wrong > 0
    assert result["failed"] == 2 and result["mismatches"] == 2 * wrong


def test_missing_compiler_is_named_with_the_fix(monkeypatch):
    real_which = runner.shutil.which
    monkeypatch.setattr(runner.shutil, "which", lambda t: None if t == "c++" else real_which(t))
    with pytest.raises(runner.SimError, match=r"`c\+\+` is not on PATH.*apt-get install g\+\+"):
        runner.verilator_env()


@pytest.mark.parametrize("ops_per_stage", [1, 100])
def test_stream_adapter_credits_hold_for_any_pipeline_depth(tmp_path, monkeypatch,
                                                            ops_per_stage):
    # The adapter's FIFO and credits are sized from the kernel's latency; a deep or a
    # one-stage pipeline must neither drop nor duplicate results under stalls.
    monkeypatch.setitem(flow.KERNELS, "requant",
                        replace(flow.KERNELS["requant"], ops_per_stage=ops_per_stage))
    result = run_case(tmp_path, "requant", {}, 3)
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    assert result["cycles"] == result["ideal_cycles"]
    assert flow.KERNELS["requant"].latency == (8 if ops_per_stage == 1 else 2)


def test_waves_give_a_vcd(tmp_path):
    result = run_case(tmp_path, "requant", {}, 0, waves=True)
    assert result["mismatches"] == 0
    with open(result["waves"]) as vcd:
        assert "i__payload" in vcd.read(200_000)


def test_failed_verilator_build_names_the_log(tmp_path):
    broken = tmp_path / "broken.v"
    broken.write_text("module broken(input clk); this is not verilog endmodule\n")
    bench = runner.Bench("broken", "broken", (broken,), tmp_path / "none.json", "sim.bench_mac")
    with pytest.raises(runner.SimError, match=r"Verilator build of broken failed.*build\.log"):
        runner.run(bench, vectors=tmp_path, build=tmp_path / "sim", seed=0)


def test_accelerator_runs_tiny_end_to_end_bit_exact(tmp_path):
    # Two images of each task here (make sim runs eight), the host stalling in the second test.
    design = replace(TOP_DESIGNS["top"], bench_args={**TOP_DESIGNS["top"].bench_args,
                                                    "images": 2, "stall_images": 1})
    sources = design.verilog(tmp_path / "verilog", tmp_path / "hls")
    result = runner.run(design.bench_spec(sources), vectors=tmp_path / "vectors",
                        build=tmp_path / "sim", seed=7)
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    runs = result["breakdown"]["runs"]
    assert len(runs) == 4 and result["vectors"] == sum(len(r["logits"]) * len(r["logits"][0])
                                                       for r in runs)
    # The cycle model holds every layer within its stated error (docs/results.md).
    work = workload("tiny", "ecp5-85f", 2, 7, design.bench_args["memory_words"])
    for r in runs:
        _, run = machine.infer(work.image, work.codes[r["image"]], r["task"])
        for cost in perf.layer_costs(work.image, run, r["task"]):
            measured = r["layers"][cost.name]
            assert abs(cost.cycles() - measured) <= perf.TOLERANCE * measured, cost.name


def run_board(tmp_path, name: str, tests: str | None):
    design = BOARD_DESIGNS[name]
    sources = design.verilog(tmp_path / "verilog", tmp_path / "hls")
    return runner.run(design.bench_spec(sources), vectors=tmp_path / "vectors",
                      build=tmp_path / "sim", seed=3, tests=tests)


def test_board_speaks_the_host_protocol_over_its_uart(tmp_path):
    # The host's own code over the UART model: identify, words written and read back (with
    # and without gaps between bytes), an unknown byte. make sim-board adds the whole model.
    result = run_board(tmp_path, "board", "link")
    assert (result["tests"], result["failed"], result["mismatches"]) == (2, 0, 0)
    # Every 16-bit lane of the 1 + 5 + 37 words read back is a vector.
    lanes = get_hw_config(BOARD_DESIGNS["board"].params["hw"]).tile_in
    assert result["vectors"] == (1 + 5 + 37) * lanes


@pytest.mark.slow
@pytest.mark.parametrize("name", ["board", "board_sdram"])
def test_board_runs_tiny_end_to_end_over_its_uart(tmp_path, name):
    result = run_board(tmp_path, name, None)
    assert (result["tests"], result["failed"], result["mismatches"]) == (3, 0, 0)
    runs = result["breakdown"]["runs"]
    assert [r["task"] for r in runs] == [0, 1] and all(r["cycles"] > 0 for r in runs)


def test_sdram_controller_keeps_the_chips_rules(tmp_path):
    # Random bursts across rows, banks and the chip's top, or single words handed over as
    # the arbiter does, idle stretches that need refreshes; the chip model stops at the
    # first broken timing rule.
    result = run_case(tmp_path, "sdram", {}, 4)
    assert (result["tests"], result["failed"], result["mismatches"]) == (4, 0, 0)
    assert result["vectors"] > 0 and result["cycles"] >= result["ideal_cycles"]
