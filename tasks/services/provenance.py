"""What produced a run: code version and installed package versions, for the manifest."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import mlflow

# The packages whose versions change what a run produces or how it is checked.
RECORDED_PACKAGES = (
    "fairdistill",
    "torch",
    "numpy",
    "polars",
    "pyarrow",
    "pandas",
    "scikit-learn",
    "prefect",
    "mlflow",
    "great-expectations",
    "safetensors",
)

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git(*arguments: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(_SOURCE_ROOT), *arguments],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def code_version() -> dict[str, str | bool | None]:
    """The package version always; the git commit when running from a checkout."""
    commit = _git("rev-parse", "HEAD") if (_SOURCE_ROOT / ".git").exists() else None
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"package": metadata.version("fairdistill"), "git_commit": commit, "git_dirty": dirty}


def lock_digest() -> str | None:
    """sha256 of the constraints file the environment was installed from, in a checkout."""
    lock = _SOURCE_ROOT / "constraints.txt"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None


def run_started_at(run_id: str) -> str:
    started = mlflow.MlflowClient().get_run(run_id).info.start_time
    return datetime.fromtimestamp(started / 1000, tz=UTC).isoformat()
