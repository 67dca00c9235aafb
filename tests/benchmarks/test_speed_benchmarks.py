"""The speed, scale, throughput and peer benchmarks run in a tiny configuration and write
their reports. Nothing here asserts a timing: only that every number is there and sane."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    # benchmarks/ is a folder of scripts run from the repository root, not an installed package.
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import scale, speed, throughput  # noqa: E402
from benchmarks.speed_common import Clock, adult_split  # noqa: E402


def test_clock_keeps_sections_in_order_with_wall_and_cpu_time() -> None:
    clock = Clock()
    with clock.section("first"):
        sum(range(10_000))
    with clock.section("second"):
        pass
    assert list(clock.sections) == ["first", "second"]
    assert set(clock.sections["first"]) == {"wall_s", "cpu_s", "load_1m"}
    assert clock.total() == pytest.approx(
        clock.sections["first"]["wall_s"] + clock.sections["second"]["wall_s"]
    )


def test_scaled_table_keeps_adult_schema_and_ranges() -> None:
    frame, spec = scale.scaled_table(3000)
    train = adult_split().train
    assert frame.height == 3000
    assert frame.schema == train.schema
    age = frame.get_column("age")
    assert age.min() >= train.get_column("age").min()
    assert age.max() <= train.get_column("age").max()
    # Jittered, not copied: some ages differ from every row they could have been drawn from.
    assert frame.get_column("fnlwgt").n_unique() > 0.9 * frame.height
    assert set(frame.get_column("sex").unique()) <= set(train.get_column("sex").unique())
    assert spec.target.column in frame.columns


def test_per_row_growth_compares_consecutive_sizes() -> None:
    results = [
        {"phase": "teacher", "rows": 1000, "epoch_s": 1.0},
        {"phase": "teacher", "rows": 10_000, "epoch_s": 20.0},
    ]
    growth = scale.per_row_growth(results, "teacher")
    assert growth["1000->10000"] == pytest.approx(2.0)
    assert growth["seconds_per_million_rows"]["1000"] == pytest.approx(1000.0)


@pytest.mark.parametrize("phase", scale.PHASES)
def test_scale_phase_reports_its_time_and_memory(phase: str) -> None:
    result = scale.run_phase(phase, 1000, threads=1, device="cpu")
    assert result["peak_rss_bytes"] > 50 * 2**20
    assert result["arrow_bytes"] > 0
    assert result.get("epoch_s", result.get("generate_s")) > 0
    assert result["measured_cpu_s"] > 0


def test_scale_runs_each_size_in_its_own_process(tmp_path: Path) -> None:
    output = tmp_path / "scale.json"
    arguments = ["--sizes", "1000", "--phases", "generate", "--threads", "1"]
    scale.main([*arguments, "--output", str(output)])
    report = json.loads(output.read_text())
    [row] = report["results"]
    assert (row["phase"], row["rows"]) == ("generate", 1000)
    assert row["memory_budget_bytes"] == 3 * row["arrow_bytes"] + scale.GIB
    assert row["process_wall_s"] >= row["generate_s"]


def test_throughput_writes_rows_and_reports_every_section(tmp_path: Path) -> None:
    output = tmp_path / "throughput.json"
    arguments = ["--rows", "5000", "--epochs", "1", "--threads", "1", "--profile"]
    throughput.main([*arguments, "--output", str(output)])
    report = json.loads(output.read_text())
    assert set(report["sections"]) == {
        "prior_sample",
        "decode_latents",
        "codec_decode",
        "parquet_write",
    }
    assert report["rows"] == 5000
    assert report["parquet_bytes"] > 10_000
    assert report["rows_per_second"] > 0
    assert "decode_latents" in report["profile"]


def test_plain_stages_time_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    speed.main(["--plain-only", "--epochs", "1", "--student-epochs", "1", "--rows", "500"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(speed.STAGES) <= set(report["stages"])
    assert report["stage_sum_s"] == pytest.approx(
        sum(report["stages"][stage]["wall_s"] for stage in speed.STAGES), abs=0.01
    )


@pytest.mark.slow
def test_speed_runs_the_pipeline_and_reads_stage_times(tmp_path: Path) -> None:
    output = tmp_path / "speed.json"
    speed.main(["--epochs", "1", "--student-epochs", "1", "--rows", "500", "--output", str(output)])
    report = json.loads(output.read_text())
    summary = report["summary"]
    assert all(summary["per_stage_pipeline_s"][stage] > 0 for stage in speed.STAGES)
    assert summary["server_start_s"] > 0
    assert summary["pipeline_wall_s"] > report["pipeline"]["stage_sum_s"]
    # The later run read back its own stages, not the first run's.
    later = report["pipeline_used_home"]
    assert set(speed.STAGES) <= set(later["stages"])
    assert later["stages"] != report["pipeline"]["stages"]
    assert summary["pipeline_used_home_wall_s"] > later["stage_sum_s"]
    assert summary["plain_wall_s"] > 0


@pytest.mark.slow
def test_ctgan_peer_evaluates_both_models(tmp_path: Path) -> None:
    from benchmarks import ctgan_peer

    output = tmp_path / "peer.json"
    arguments = ["--ctgan-epochs", "1", "--max-rows", "2000", "--threads", "1"]
    ctgan_peer.main([*arguments, "--output", str(output)])
    report = json.loads(output.read_text())
    assert report["ctgan_epochs"] == 1
    for name in ("fairdistill", "ctgan"):
        assert 0.0 <= report["metrics"][name]["fidelity.coverage"] <= 1.0
    assert report["ctgan_fit_s_at_default_epochs"] > report["sections"]["ctgan_fit"]["wall_s"]


def test_ctgan_output_is_cast_back_to_the_training_schema() -> None:
    from benchmarks import ctgan_peer
    from benchmarks.speed_common import Clock as PeerClock

    split = adult_split()
    train = split.train.head(600)
    synthetic = ctgan_peer.ctgan_synthetic(train, split.spec, 1, PeerClock())
    assert synthetic.schema == train.schema
    assert synthetic.height == train.height
    assert isinstance(synthetic, pl.DataFrame)
