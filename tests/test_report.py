"""make report's comparison with Edge-MoE, from saved results."""

import json

import pytest

from pyref.config import get_hw_config
from scripts import report


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """Empty result folders in place of build/bitstream and build/report."""
    monkeypatch.setattr(report, "BITSTREAM", tmp_path / "bitstream")
    monkeypatch.setattr(report, "REPORT", tmp_path / "report")
    (tmp_path / "bitstream" / "ulx3s").mkdir(parents=True)
    (tmp_path / "report").mkdir()
    return tmp_path


def write(path, value):
    path.write_text(json.dumps(value))


MODEL = {"hw": "ecp5-85f", "config": "tiny", "cycles_per_image": 50_000,
         "mac_utilisation": 0.5, "bytes_per_image": 1000}


def test_the_board_row_pairs_the_board_fmax_with_the_rtl_run(saved):
    write(saved / "bitstream" / "ulx3s" / "report.json",
          {"params": {"hw": "ecp5-85f"}, "fmax_mhz": 80.0, "dsp": 100})
    (row,) = report._comparison(MODEL)
    peak = get_hw_config("ecp5-85f").peak_macs_per_cycle
    assert row["fps"] == pytest.approx(80e6 / 50_000)
    assert row["gops"] == pytest.approx(2 * 0.5 * peak * 80 / 1e3)
    assert row["gops_per_mac_multiplier"] == pytest.approx(row["gops"] / peak)
    assert row["gops_per_dsp_used"] == pytest.approx(row["gops"] / 100)
    assert "Edge-MoE (ZCU102)" in "\n".join(report._comparison_section([row]))


def test_a_board_built_for_another_set_is_not_paired_with_the_run(saved):
    write(saved / "bitstream" / "ulx3s" / "report.json",
          {"params": {"hw": "ecp5-8x8"}, "fmax_mhz": 80.0, "dsp": 100})
    assert report._comparison(MODEL) == []


def test_projections_average_the_tasks(saved):
    tasks = [{"hw": "edge-moe", "cycles": c, "mac_utilisation": u, "bytes_per_image": 10,
              "mhz": 300.0, "clock": "Edge-MoE's clock"} for c, u in ((100, 0.6), (300, 0.8))]
    write(saved / "report" / "bench.json",
          {"projection": {f"edge-moe.task{k}": t for k, t in enumerate(tasks)}})
    (row,) = report._comparison(None)
    assert row["fps"] == pytest.approx(300e6 / 200) and row["mac_utilisation"] == 0.7
    assert row["dsp_used"] is None


def test_the_boards_compute_is_projected_at_the_boards_clock(saved):
    write(saved / "bitstream" / "ulx3s" / "report.json",
          {"params": {"hw": "ecp5-85f"}, "fmax_mhz": 80.0, "dsp": 100})
    task = {"hw": "ecp5-85f-m3vit", "cycles": 1000, "mac_utilisation": 0.9,
            "bytes_per_image": 10, "mhz": 100.0, "clock": "target"}
    write(saved / "report" / "bench.json", {"projection": {"ecp5-85f-m3vit.task0": task}})
    (row,) = report._comparison(None)
    assert row["mhz"] == 80.0 and row["dsp_used"] == 100


def test_a_board_report_without_its_set_pairs_with_nothing(saved):
    write(saved / "bitstream" / "ulx3s" / "report.json", {"fmax_mhz": 80.0, "dsp": 100})
    assert report._comparison(MODEL) == []
