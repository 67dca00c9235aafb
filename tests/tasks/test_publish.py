"""The publish stage: a passed gate writes the run folder with a manifest that matches it;
a missed gate writes nothing and names the gate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fairdistill.models.errors import QualityGateError
from fairdistill.tasks.publish import publish

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def run_publish(config, context, output: Path, name: str, chain: tuple):
    return publish(config, context, str(output), name, *chain)


@pytest.fixture
def chain(validated, prepared, trained_teacher, trained_student, synthetic, evaluation) -> tuple:
    return validated, prepared, trained_teacher, trained_student, synthetic, evaluation


def test_a_passed_gate_publishes_a_folder_its_manifest_describes(
    stage_config, stage_context, chain, tmp_path: Path, stage_child_run
) -> None:
    config = type(stage_config).model_validate(
        {**stage_config.model_dump(), "register_model": False, "gates": {"min_utility_ratio": None}}
    )
    published = run_publish(config, stage_context, tmp_path, "passed", chain)
    folder = Path(published.folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data = (folder / "synthetic.parquet").read_bytes()
    assert manifest["output"]["sha256"] == hashlib.sha256(data).hexdigest() == published.sha256
    assert manifest["output"]["rows"] == published.rows == 300
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert manifest["metrics"] == chain[-1].metrics
    assert published.registry is None
    assert stage_child_run("publish").info.status == "FINISHED"


def test_a_missed_gate_writes_nothing_and_names_the_gate(
    stage_config, stage_context, chain, tmp_path: Path, stage_child_run
) -> None:
    config = type(stage_config).model_validate(
        {**stage_config.model_dump(), "gates": {"min_utility_ratio": 5.0}}
    )
    with pytest.raises(QualityGateError, match="min_utility_ratio"):
        run_publish(config, stage_context, tmp_path, "missed", chain)
    assert list(tmp_path.iterdir()) == []
    assert stage_child_run("publish").info.status == "FAILED"
