"""Killed during training, a rerun resumes from the last epoch checkpoint and ends
byte-identical to a run that was never interrupted; completed stages are reused, the
summary says where training resumed, and the killed run's MLflow runs end as KILLED."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import polars as pl
import pytest

from fairdistill.data import bundled_dataset

pytestmark = pytest.mark.slow

EPOCHS = 8


def cli(home: Path, input_folder: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fairdistill.flows.cli",
        "run",
        "--data",
        str(input_folder / "sample.parquet"),
        "--spec",
        str(input_folder / "spec.yaml"),
        "--output",
        str(output),
        "--epochs",
        str(EPOCHS),
        "--student-epochs",
        "2",
        "--config",
        str(input_folder / "config.yaml"),
        "--json",
        *extra,
    ]


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "FAIRDISTILL_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def input_folder(tmp_path_factory: pytest.TempPathFactory, adult_sample: pl.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("resume-input")
    # Enough rows that one epoch takes a noticeable moment, so the kill lands mid-training.
    adult_sample.write_parquet(folder / "sample.parquet")
    shutil.copy(bundled_dataset("adult").spec_path, folder / "spec.yaml")
    (folder / "config.yaml").write_text(
        "teacher: {batch_size: 64}\ngates: {min_utility_ratio: null, max_exact_copy_excess: null,"
        " max_dcr_share_below_holdout_p5: null}\n"
    )
    return folder


def summary_of(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def published_digest(stdout: str) -> tuple[str, dict]:
    summary = summary_of(stdout)
    manifest = json.loads(Path(summary["published"]["manifest"]).read_text())
    return summary["published"]["sha256"], manifest["metrics"]


def runs_of(home: Path, filter_string: str = "") -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=filter_string)


def resumed_after_epoch(home: Path) -> int:
    runs = runs_of(home, "tags.`fairdistill.stage` = 'train_teacher'")
    resumed = [
        int(run.data.params["resumed_after_epoch"])
        for run in runs
        if "resumed_after_epoch" in run.data.params
    ]
    assert len(resumed) == 1, "exactly one teacher run resumed from a checkpoint"
    return resumed[0]


def wait_for_checkpoint(home: Path, process: subprocess.Popen, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((home / "checkpoints").glob("*/train_teacher.epoch-*.sha256"))
        if found:
            return found[0]
        assert process.poll() is None, "the run ended before writing a checkpoint"
        time.sleep(0.05)
    raise AssertionError("no teacher checkpoint appeared")


def test_killed_training_resumes_to_identical_output(input_folder: Path, tmp_path: Path) -> None:
    straight_home, killed_home = tmp_path / "straight", tmp_path / "killed"
    straight = subprocess.run(
        cli(straight_home, input_folder, tmp_path / "out-straight"),
        env=environment(straight_home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    victim = subprocess.Popen(
        cli(killed_home, input_folder, tmp_path / "out-killed"),
        env=environment(killed_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_for_checkpoint(killed_home, victim, timeout=300)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert not (tmp_path / "out-killed").exists() or not any((tmp_path / "out-killed").iterdir())

    resumed = subprocess.run(
        cli(killed_home, input_folder, tmp_path / "out-killed"),
        env=environment(killed_home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Epochs count from 0: the rerun picked up mid-training, not from scratch or the end.
    after = resumed_after_epoch(killed_home)
    assert 0 <= after < EPOCHS - 1
    # The summary counts epochs from 1, as the live display does.
    stages = {stage["stage"]: stage for stage in summary_of(resumed.stdout)["stages"]}
    assert stages["train_teacher"]["resumed_from_epoch"] == after + 1
    assert stages["validate"]["reused"] and stages["validate"]["resumed_from_epoch"] is None
    # The killed run's flow and teacher runs were left RUNNING; the rerun ended them.
    assert runs_of(killed_home, "attributes.status = 'RUNNING'") == []
    killed = runs_of(killed_home, "attributes.status = 'KILLED'")
    assert sorted(run.data.tags["fairdistill.stage"] for run in killed) == ["flow", "train_teacher"]
    for run in killed:
        assert f"its process (pid {victim.pid}) is gone" in run.data.tags["fairdistill.failure"]
    assert "ended 2 MLflow run(s) left RUNNING by a killed run" in resumed.stderr
    straight_sha, straight_metrics = published_digest(straight.stdout)
    resumed_sha, resumed_metrics = published_digest(resumed.stdout)
    assert resumed_sha == straight_sha
    assert resumed_metrics == straight_metrics
    # The finished stage cleared its checkpoint: nothing stale is left to resume from.
    assert not list((killed_home / "checkpoints").glob("*/train_teacher.*safetensors"))
