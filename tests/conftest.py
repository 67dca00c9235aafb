"""Session-wide test setup: an isolated fairdistill home, quiet and offline services."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Set before any test module imports Prefect or MLflow: both read these at import time.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="fairdistill-tests-"))
os.environ["FAIRDISTILL_HOME"] = str(_SESSION_HOME)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.pop("MLFLOW_TRACKING_URI", None)
for _name, _value in {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # Stage tasks run on their own in tests, outside a flow run: their logs stay local.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "GIT_PYTHON_REFRESH": "quiet",
}.items():
    os.environ[_name] = _value

import polars as pl  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a test module: tiny models gain nothing from threads, which only
    wait on each other on a busy CPU. Use with ``pytest.mark.usefixtures``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fairdistill_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def adult_frame() -> pl.DataFrame:
    from fairdistill.data import bundled_dataset

    return pl.read_parquet(bundled_dataset("adult").data_path)


@pytest.fixture(scope="session")
def adult_sample(adult_frame: pl.DataFrame) -> pl.DataFrame:
    """3,000 Adult rows: enough for every stage and metric, small enough for seconds."""
    return adult_frame.sample(n=3000, seed=7)


# Few epochs: the end-to-end tests check that every stage runs and is recorded, not quality.
FAST_TRAINING = {"teacher": {"epochs": 3}, "student": {"epochs": 3}}


@pytest.fixture(scope="session")
def sample_input(tmp_path_factory: pytest.TempPathFactory, adult_sample: pl.DataFrame) -> dict:
    """The Adult sample as a user's own parquet file with its spec beside it."""
    from fairdistill.data import bundled_dataset

    folder = tmp_path_factory.mktemp("input")
    data = folder / "adult_sample.parquet"
    adult_sample.write_parquet(data)
    spec = folder / "adult.yaml"
    shutil.copy(bundled_dataset("adult").spec_path, spec)
    return {"data": str(data), "spec": str(spec)}


@pytest.fixture(scope="session")
def finished_run_config(sample_input: dict, tmp_path_factory: pytest.TempPathFactory):
    """The configuration of ``finished_run``: the Adult sample, few epochs, loose gates."""
    from fairdistill.models.config import RunConfig

    output = tmp_path_factory.mktemp("published")
    loose_gates = {
        "min_utility_ratio": None,
        "max_exact_copy_excess": None,
        "max_dcr_share_below_holdout_p5": None,
    }
    return RunConfig.model_validate(
        {**sample_input, **FAST_TRAINING, "output": str(output), "gates": loose_gates}
    )


@pytest.fixture(scope="session")
def finished_run(finished_run_config):
    """One real flow run (Prefect engine, MLflow SQLite store) shared by the slow tests."""
    from fairdistill.flows.regenerate import regenerate_fair_dataset

    return regenerate_fair_dataset(finished_run_config), Path(finished_run_config.output)
