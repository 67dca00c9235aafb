"""Two runs started at once on one output root, with the same input, config and seed.

Both succeed into their own run folders; ``latest`` is switched atomically and never
dangles; their published data are byte-identical and their metrics equal (determinism on
CPU); and nothing from the environment ends up in what they record.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from cli_runs import inconsistencies, run_command, summary_of, write_german_input

pytestmark = pytest.mark.slow

RUN_NAMES = ("first", "second")
# Set in the runs' environment; it must appear in nothing they print or record.
SECRET_VARIABLE, SECRET = "FAIRDISTILL_TEST_SECRET", "s3cret-never-recorded-7f3a"


class Watcher(threading.Thread):
    """Looks at the output root over and over while the runs publish into it."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.looks = 0
        self.problems: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.problems += inconsistencies(self.root)
            except OSError as error:  # a visible run (or its files) vanished under a reader
                self.problems.append(f"{type(error).__name__}: {error}")
            self.looks += 1
            time.sleep(0.005)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> dict:
    folder = write_german_input(tmp_path_factory.mktemp("input"))
    # A fresh home: both runs also create the MLflow store and experiment at the same time.
    home = tmp_path_factory.mktemp("fresh-home")
    output = home / "published"
    environment = {
        **os.environ,
        "FAIRDISTILL_HOME": str(home),
        "PREFECT_API_URL": prefect_api_url,
        SECRET_VARIABLE: SECRET,
    }
    environment.pop("MLFLOW_TRACKING_URI", None)
    watcher = Watcher(output)
    watcher.start()
    processes = {
        name: subprocess.Popen(
            run_command(folder, output, name),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in RUN_NAMES
    }
    finished = {name: process.communicate(timeout=540) for name, process in processes.items()}
    watcher.stop.set()
    watcher.join()
    return {
        "home": home,
        "output": output,
        "watcher": watcher,
        "codes": {name: process.returncode for name, process in processes.items()},
        "stdout": {name: out for name, (out, _) in finished.items()},
        "stderr": {name: err for name, (_, err) in finished.items()},
    }


def test_both_runs_publish_into_their_own_folders(two_runs: dict) -> None:
    assert two_runs["codes"] == {"first": 0, "second": 0}, two_runs["stderr"]
    output: Path = two_runs["output"]
    assert sorted(p.name for p in output.iterdir()) == ["first", "latest", "second"]
    assert os.readlink(output / "latest") in RUN_NAMES
    for name in RUN_NAMES:
        assert summary_of(two_runs["stdout"][name])["published"]["folder"] == str(output / name)
    assert inconsistencies(output) == []


def test_json_output_keeps_mlflow_progress_lines_off_the_console(two_runs: dict) -> None:
    for name in RUN_NAMES:
        assert "Successfully registered model" not in two_runs["stderr"][name]
        assert "Created version" not in two_runs["stderr"][name]


def test_a_reader_never_saw_a_partial_run_or_a_dangling_latest(two_runs: dict) -> None:
    watcher = two_runs["watcher"]
    assert watcher.looks > 100
    assert watcher.problems == []


def test_same_input_config_and_seed_give_identical_data_and_metrics(two_runs: dict) -> None:
    manifests = {
        name: json.loads((two_runs["output"] / name / "manifest.json").read_text())
        for name in RUN_NAMES
    }
    first, second = manifests["first"], manifests["second"]
    assert first["output"]["sha256"] == second["output"]["sha256"]
    assert first["metrics"] == second["metrics"]
    assert first["models"] == second["models"]  # weights digests included
    data = [(two_runs["output"] / name / "synthetic.parquet").read_bytes() for name in RUN_NAMES]
    assert data[0] == data[1]


def test_identifier_and_constant_columns_were_handled(two_runs: dict) -> None:
    frame = pl.read_parquet(two_runs["output"] / "first" / "synthetic.parquet")
    assert "application_id" not in frame.columns
    assert frame.get_column("currency").unique().to_list() == ["EUR"]
    warnings = two_runs["stderr"]["first"]
    assert "column 'application_id' is left out of the model" in warnings
    assert "column 'currency' holds the same value" in warnings


def test_nothing_from_the_environment_is_recorded(two_runs: dict) -> None:
    """Not in the output, the logs, the MLflow store and artifacts, or the run folders."""
    for name in RUN_NAMES:
        assert SECRET not in two_runs["stdout"][name] + two_runs["stderr"][name]
    home: Path = two_runs["home"]
    scanned = 0
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path
            scanned += 1
    assert scanned > 20
    assert (home / "mlflow.db").is_file()
