"""Command-line entry points: bad input gets one clear line and exit code 2."""

import pytest

from scripts import common, verilog
from scripts import compile as compile_script
from scripts import vectors as vectors_script


@pytest.mark.parametrize("text", ["abc", "", "-1", "1.5"])
def test_bad_seed_is_named_with_an_example(text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        vectors_script.run([f"--seed={text}"])
    assert exit_info.value.code == 2
    assert "SEED must be an integer" in capsys.readouterr().err


def test_unknown_design_lists_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        verilog.run(["nope"])
    assert exit_info.value.code == 2
    assert "unknown design 'nope': choose from requant, gelu," in capsys.readouterr().err


def test_known_errors_become_one_line_without_traceback(capsys):
    @common.main
    def failing(argv=None):
        raise common.ToolError("nextpnr-ecp5 failed; see log")

    with pytest.raises(SystemExit) as exit_info:
        failing()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: nextpnr-ecp5 failed; see log\n"


def test_vectors_script_writes_every_set(tmp_path, capsys):
    vectors_script.run(["--seed=7", f"--out={tmp_path}"])
    assert {p.name for p in tmp_path.iterdir()} >= {"mac.npz", "mac.json", "requant.npz"}


@pytest.mark.parametrize("args,message", [
    (["--task=3"], "error: unknown task 3: config 'tiny' has tasks 0, 1"),
    (["--memory-words=1000"], "but the memory holds 1000: build the accelerator with "
                              "memory_words >= "),
])
def test_a_program_that_cannot_run_is_one_clear_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compile_script.run(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("module,args,message", [
    ("optics", ["--images=0"], "error: --images must be 1..1000"),
    ("train_convshare", ["--epochs=0"], "error: --epochs must be at least 1"),
])
def test_optics_scripts_refuse_bad_arguments(module, args, message, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"scripts.{module}").run(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_refit_without_a_sim_run_says_which_command_makes_it(tmp_path, monkeypatch, capsys):
    from scripts import refit

    monkeypatch.setattr(refit, "SIM", tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        refit.run(["--seed=3"])
    assert exit_info.value.code == 2
    assert "results.json is missing: run `make sim SEED=3` first" in capsys.readouterr().err


def test_congestion_sums_the_last_router2_iteration_by_module(tmp_path, capsys):
    from scripts import congestion

    heat = tmp_path / "heat"
    heat.mkdir()
    nets = {1: "board.accelerator.linear.results.x[0],9\n",
            2: "board.accelerator.attention.pipe.a[1],3\nboard.accelerator.attention.pipe.b,2\n"
               "board.accelerator.moe.top.c,1\n"}
    for iteration, text in nets.items():
        stem = f"{congestion.PREFIX}_by_{{}}_{iteration}.csv"
        (tmp_path / stem.format("net")).write_text(text)
        (tmp_path / stem.format("wiretype")).write_text(
            "type,bound=0,bound=1,bound=2,bound=3,\nWIRE_TYPE_H02,5,4,3,1,\nWIRE_TYPE_V06,2,0,0,0,\n")
        (tmp_path / stem.format("coordinate")).write_text("0,0,\n0,4,\n2,0,\n")
    congestion.run([str(tmp_path)])
    out = capsys.readouterr().out
    assert "iteration 2: 4 overused wires; by type: H02 4" in out
    assert "5  board.accelerator.attention.pipe" in out and "linear" not in out
    assert (tmp_path / "congestion.png").exists()


def test_congestion_without_heatmaps_says_how_to_make_them(tmp_path, capsys):
    from scripts import congestion

    with pytest.raises(SystemExit) as exit_info:
        congestion.run([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no router2 heatmaps in" in capsys.readouterr().err
