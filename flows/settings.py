"""Where fairdistill keeps its state, read once from the environment.

This is the only module that reads environment variables. Embedded defaults put every
service's state under one home folder so a laptop run needs no server: Prefect's
ephemeral SQLite database, MLflow's SQLite store and artifacts, the work files of each
run and the published datasets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fairdistill.models.errors import ConfigError

HOME_VARIABLE = "FAIRDISTILL_HOME"
WORK_URI_VARIABLE = "FAIRDISTILL_WORK_URI"
CHECKPOINT_URI_VARIABLE = "FAIRDISTILL_CHECKPOINT_URI"
GPU_SLOTS_VARIABLE = "FAIRDISTILL_GPU_SLOTS"
TORCH_THREADS_VARIABLE = "FAIRDISTILL_TORCH_THREADS"

# Torch/OpenMP threads per stage unless configured. On an idle 2-core machine a second
# thread cut an Adult training epoch by 10-25 % (teacher 1.11 -> 0.87-0.96 s, student 0.87 ->
# 0.68-0.83 s), but with one other busy process on the cores, epochs took 10-30 times longer
# (threads wait for a descheduled peer; a passive OpenMP wait policy halved the idle speed
# instead). Results repeat exactly for one thread count, not across counts.
DEFAULT_STAGE_THREADS = 1

# Inside the work root; a run name cannot start with a dot, so no run folder collides.
CHECKPOINT_FOLDER = ".checkpoints"
DEFAULT_HOME = ".fairdistill"

# Offline and quiet by default: audited runs must not phone home. A user's own
# setting wins (setdefault).
_QUIET_ENVIRONMENT = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    tracking_uri: str
    prefect_home: Path
    dask_address: str | None = None
    # PyTorch (and OpenMP) threads per stage; see DEFAULT_STAGE_THREADS.
    torch_threads: int = DEFAULT_STAGE_THREADS
    # Where stages exchange files, as any fsspec URI; None: the local folder work_root.
    work_location: str | None = None
    # Where training saves its epoch checkpoints; None: beside the work files (see below).
    checkpoint_location: str | None = None
    # Slots of the Prefect tag concurrency limit `gpu` the flow creates when the server has
    # none; 0: leave the server's tag limits alone.
    gpu_slots: int = 1

    @property
    def work_root(self) -> Path:
        """The local work folder, used when no work URI is set."""
        return self.home / "work"

    @property
    def work_uri(self) -> str:
        return (self.work_location or str(self.work_root)).rstrip("/")

    @property
    def checkpoint_uri(self) -> str:
        if self.checkpoint_location:
            return self.checkpoint_location.rstrip("/")
        if self.work_location:
            # A resumed attempt may run on another machine: it must find the checkpoint
            # wherever it finds the work files.
            return f"{self.work_uri}/{CHECKPOINT_FOLDER}"
        return str(self.home / "checkpoints")

    @property
    def default_output(self) -> Path:
        return self.home / "published"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"


def load_settings() -> Settings:
    home = Path(os.environ.get(HOME_VARIABLE, DEFAULT_HOME)).expanduser().resolve()
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    prefect_home = Path(os.environ.get("PREFECT_HOME", str(home / "prefect")))
    dask_address = os.environ.get("FAIRDISTILL_DASK_ADDRESS") or None
    return Settings(
        home=home,
        tracking_uri=tracking_uri,
        prefect_home=prefect_home,
        dask_address=dask_address,
        torch_threads=max(1, _integer_variable(TORCH_THREADS_VARIABLE, DEFAULT_STAGE_THREADS)),
        work_location=os.environ.get(WORK_URI_VARIABLE) or None,
        checkpoint_location=os.environ.get(CHECKPOINT_URI_VARIABLE) or None,
        gpu_slots=max(0, _integer_variable(GPU_SLOTS_VARIABLE, 1)),
    )


def _integer_variable(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"the environment variable {name} is {text!r}, not a whole number",
            rule=name,
            hint=f"set {name} to a whole number such as {default}, or unset it",
        ) from None


def prepare_environment(settings: Settings) -> None:
    """Set the variables Prefect and MLflow read at import time; call before importing them."""
    for name, value in _QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    settings.home.mkdir(parents=True, exist_ok=True)
