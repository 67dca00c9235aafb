"""Finding the run whose report to draw again: by its id, its published folder or manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairdistill.models.errors import FairdistillError
from fairdistill.tasks.services.run_report import resolve_run

OWN_STORE = "sqlite:///home/me/mlflow.db"


def write_manifest(folder: Path, tracking_uri: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"mlflow": {"tracking_uri": tracking_uri, "run_id": "abc123"}}))
    return manifest


def test_a_run_id_is_looked_up_in_the_callers_store() -> None:
    assert resolve_run("abc123", OWN_STORE) == (OWN_STORE, "abc123")


def test_a_manifest_or_its_folder_names_the_store_and_the_run(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "run", "sqlite:///srv/mlflow.db")
    assert resolve_run(str(manifest), OWN_STORE) == ("sqlite:///srv/mlflow.db", "abc123")
    assert resolve_run(str(manifest.parent), OWN_STORE) == ("sqlite:///srv/mlflow.db", "abc123")


def test_a_store_recorded_without_its_credentials_is_reached_through_the_callers(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, "postgresql://***@db.internal/mlflow")
    assert resolve_run(str(manifest), OWN_STORE) == (OWN_STORE, "abc123")


def test_a_file_that_is_no_manifest_is_refused_clearly(tmp_path: Path) -> None:
    broken = tmp_path / "manifest.json"
    broken.write_text('{"mlflow": {}}')
    with pytest.raises(FairdistillError, match="Cannot read the MLflow run") as raised:
        resolve_run(str(broken), OWN_STORE)
    assert raised.value.rule == "report-manifest"
    with pytest.raises(FairdistillError, match="Cannot read"):
        resolve_run(str(tmp_path / "missing.json"), OWN_STORE)
