"""verify on a real published run: it catches any change to the data, its companions or
the record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairdistill.flows.cli import app
from fairdistill.tasks.services.audit import VerificationError, differing_metrics, verify

pytestmark = pytest.mark.slow


@pytest.fixture
def published_copy(finished_run, tmp_path: Path) -> Path:
    """A private copy of the published run folder, free to tamper with."""
    summary, _ = finished_run
    folder = tmp_path / "run"
    shutil.copytree(summary.published.folder, folder)
    return folder / "manifest.json"


def test_an_untouched_run_verifies(published_copy: Path) -> None:
    result = verify(published_copy)
    assert result.ok, result.mismatches
    assert any("sha256 matches" in check for check in result.checks)
    assert any("metrics match the MLflow record" in check for check in result.checks)


def test_a_flipped_byte_in_the_data_is_caught(published_copy: Path) -> None:
    data = published_copy.parent / "synthetic.parquet"
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0x01
    data.write_bytes(bytes(content))
    result = verify(published_copy)
    assert not result.ok
    assert any("synthetic.parquet" in m and "differs" in m for m in result.mismatches)


def test_edited_companions_and_metrics_are_caught(published_copy: Path) -> None:
    (published_copy.parent / "model_card.md").write_text("edited")
    manifest = json.loads(published_copy.read_text())
    manifest["metrics"]["tstr.gradient_boosting.auroc"] = 0.99
    published_copy.write_text(json.dumps(manifest))
    mismatches = verify(published_copy).mismatches
    assert any("model_card.md" in m for m in mismatches)
    assert any("tstr.gradient_boosting.auroc" in m for m in mismatches)


def test_each_stage_is_traced_to_the_run_that_computed_it(published_copy: Path) -> None:
    checks = verify(published_copy).checks
    assert any(check.startswith("evaluate was computed by stage run") for check in checks)
    manifest = json.loads(published_copy.read_text())
    computed = manifest["mlflow"]["stage_runs"]["train_teacher"]
    manifest["mlflow"]["stage_runs"]["train_teacher"] = "0" * 32
    published_copy.write_text(json.dumps(manifest))
    assert (
        f"train_teacher: the manifest names stage run {'0' * 32}, MLflow records {computed}"
        in verify(published_copy).mismatches
    )


def test_the_cli_exits_non_zero_on_a_mismatch(published_copy: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["verify", str(published_copy)]).exit_code == 0
    (published_copy.parent / "synthetic.parquet").write_bytes(b"not parquet")
    failed = runner.invoke(app, ["verify", str(published_copy)])
    assert failed.exit_code == 4
    assert "MISMATCH" in failed.output


def test_a_file_that_is_not_a_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{}")
    with pytest.raises(VerificationError, match="not a fairdistill manifest"):
        verify(path)


def test_the_bundle_is_complete(finished_run) -> None:
    summary, _ = finished_run
    folder = Path(summary.published.folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in (
        "input",
        "spec",
        "config",
        "seed",
        "code_version",
        "packages",
        "validation",
        "mlflow",
        "metrics",
        "gates",
        "output",
        "files",
        "started_at",
        "created_at",
    ):
        assert key in manifest, key
    assert set(manifest["files"]) >= {"report.md", "model_card.md"}
    card = (folder / "model_card.md").read_text()
    assert "## Intended use" in card and "## Known limitations" in card


def test_a_metric_that_could_not_be_computed_agrees_with_its_absence_in_mlflow() -> None:
    nan = float("nan")
    manifest = {"auroc": 0.9, "eor": nan}
    assert differing_metrics({"auroc": 0.9}, manifest) == []
    assert differing_metrics({"auroc": 0.9, "eor": nan}, manifest) == []
    assert differing_metrics({"auroc": 0.9, "eor": 0.5}, manifest) == ["eor"]
    assert differing_metrics({"eor": nan}, manifest) == ["auroc"]
    assert differing_metrics({"auroc": 0.8}, {"auroc": 0.9}) == ["auroc"]
