"""``fairdistill generate`` on a real published run: its registered generator (real MLflow
SQLite store and registry) draws conditional rows, evaluates and publishes them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import polars as pl
import pytest
from typer.testing import CliRunner

from fairdistill.flows.cli import app
from fairdistill.flows.conditional_generation import (
    GenerateRequest,
    generate_rows,
    recorded_split,
)
from fairdistill.flows.settings import load_settings
from fairdistill.models.conditions import ConditionError
from fairdistill.models.spec import DatasetSpec
from fairdistill.tasks.services.audit import verify

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

# The registered model of the session's finished run (its input is adult_sample.parquet).
# The session's registry holds other tables' models too, so an alias must name its model.
SAMPLE_MODEL = "fairdistill-adult_sample"
WHERE = (
    "age >= 40",
    "workclass in [Private, Self-emp-inc]",
    "hours_per_week between 30 and 60",
    "sex == Male",
    "income == <=50K",
)


@pytest.fixture(scope="module")
def source_manifest(finished_run) -> Path:
    summary, _ = finished_run
    return Path(summary.published.manifest)


@pytest.fixture(scope="module")
def drawn(source_manifest: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("conditional")
    request = GenerateRequest(
        source=str(source_manifest), rows=300, where=WHERE, seed=5, output=str(output)
    )
    return generate_rows(request)


def test_the_published_rows_meet_every_condition_in_the_exact_count(drawn) -> None:
    frame = pl.read_parquet(drawn.data)
    assert frame.height == 300
    assert (frame["age"] >= 40).all()
    assert frame["workclass"].is_in(["Private", "Self-emp-inc"]).all()
    assert frame["hours_per_week"].is_between(30, 60).all()
    assert frame["sex"].unique().to_list() == ["Male"]
    assert frame["income"].unique().to_list() == ["<=50K"]


def test_the_manifest_records_conditions_source_output_and_evaluation(
    drawn, source_manifest: Path
) -> None:
    manifest = json.loads(Path(drawn.manifest).read_text())
    assert [c["text"] for c in manifest["conditions"]] == list(WHERE)
    assert manifest["source"]["manifest"] == str(source_manifest.resolve())
    assert manifest["source"]["model_uri"].startswith("models:/fairdistill-")
    assert manifest["request"] == {"rows": 300, "seed": 5, "sensitive_mix": "real"}
    assert manifest["output"]["sha256"] == drawn.sha256
    evaluation = manifest["evaluation"]
    assert evaluation["real_test_slice_rows"] > 0
    if evaluation["status"] == "evaluated":
        tstr = evaluation["families"]["gradient_boosting"]["tstr"]
        assert set(tstr["utility"]) >= {"auroc", "f1", "accuracy", "positive_prediction_rate"}
    else:
        assert "real test rows meet" in evaluation["reason"]
    run = mlflow.MlflowClient(load_settings().tracking_uri).get_run(drawn.run_id)
    assert run.info.status == "FINISHED"
    assert json.loads(run.data.params["conditions"]) == list(WHERE)
    assert run.data.tags["output.sha256"] == drawn.sha256


@pytest.fixture
def drawn_copy(drawn, tmp_path: Path) -> Path:
    """A private copy of the published conditional folder, free to tamper with."""
    folder = tmp_path / "conditional"
    shutil.copytree(drawn.folder, folder)
    return folder / "manifest.json"


def test_verify_checks_the_folder_its_mlflow_run_and_its_source(drawn_copy: Path) -> None:
    result = verify(drawn_copy)
    assert result.ok, result.mismatches
    checks = "\n".join(result.checks)
    for expected in (
        "synthetic.parquet sha256 matches the manifest",
        "report.md sha256 matches the manifest",
        "the output sha256 matches the MLflow record",
        "params) matches the MLflow record",
        "metrics match the MLflow record",
        "is registered",
        "the source run's manifest sha256 matches the record",
    ):
        assert expected in checks, expected


def test_verify_exits_4_on_a_flipped_byte_and_an_edited_record(drawn_copy: Path) -> None:
    data = drawn_copy.parent / "synthetic.parquet"
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0x01
    data.write_bytes(bytes(content))
    manifest = json.loads(drawn_copy.read_text())
    manifest["request"]["seed"] += 1
    manifest["draw"]["draws"] += 1
    manifest["source"]["version"] = 999
    drawn_copy.write_text(json.dumps(manifest))
    failed = CliRunner().invoke(app, ["verify", str(drawn_copy)])
    assert failed.exit_code == 4
    mismatches = [line for line in failed.output.splitlines() if line.startswith("MISMATCH")]
    assert any("synthetic.parquet" in line and "differs" in line for line in mismatches)
    assert any("params differ" in line and "seed" in line for line in mismatches)
    assert any("metrics differ" in line and "draws" in line for line in mismatches)
    assert any("no version 999" in line for line in mismatches)


def test_a_wide_condition_is_evaluated_on_the_real_slice(
    source_manifest: Path, tmp_path: Path
) -> None:
    request = GenerateRequest(
        source=str(source_manifest), rows=400, where=("age >= 30",), output=str(tmp_path)
    )
    manifest = json.loads(Path(generate_rows(request).manifest).read_text())
    evaluation = manifest["evaluation"]
    assert evaluation["status"] == "evaluated", evaluation.get("reason")
    for protocol in ("tstr", "trtr"):
        outcome = evaluation["families"]["gradient_boosting"][protocol]
        assert 0.0 <= outcome["utility"]["auroc"] <= 1.0
        assert "demographic_parity_ratio" in outcome["fairness"]["sex"]


def test_the_alias_and_the_run_id_reach_the_same_generator_and_bytes(
    drawn, finished_run, tmp_path: Path
) -> None:
    summary, _ = finished_run
    assert drawn.source.startswith(f"models:/{SAMPLE_MODEL}/")
    for source in ("candidate", summary.mlflow_run_id):
        request = GenerateRequest(
            source=source, model=SAMPLE_MODEL, rows=300, where=WHERE, seed=5, output=str(tmp_path)
        )
        again = generate_rows(request)
        assert again.source == drawn.source
        assert again.sha256 == drawn.sha256


def test_an_impossible_condition_fails_naming_it_and_publishes_nothing(
    source_manifest: Path, tmp_path: Path
) -> None:
    request = GenerateRequest(
        source=str(source_manifest), rows=10, where=("age >= 200",), output=str(tmp_path / "out")
    )
    with pytest.raises(ConditionError, match="'age >= 200'"):
        generate_rows(request)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    client = mlflow.MlflowClient(load_settings().tracking_uri)
    failed = client.search_runs(
        [client.get_experiment_by_name("fairdistill").experiment_id],
        "tags.`fairdistill.kind` = 'conditional-generation'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert failed.info.status == "FAILED"
    assert "age >= 200" in failed.data.tags["fairdistill.failure"]


def test_the_command_exits_2_with_one_line_and_reads_a_conditions_file(
    source_manifest: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "fairdistill.flows.cli", "generate", "--from"]
    refused = subprocess.run(
        [*command, str(source_manifest), "--rows", "5", "--where", "agee >= 60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'age'" in lines[0]
    conditions = tmp_path / "where.yaml"
    conditions.write_text("- age >= 50\n- 'education in [Bachelors, Masters]'\n")
    done = subprocess.run(
        [
            *command,
            *("candidate", "--model", SAMPLE_MODEL, "--rows", "50"),
            *("--where-file", str(conditions)),
            *("--where", "sex == Female", "--output", str(tmp_path / "out"), "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    frame = pl.read_parquet(json.loads(done.stdout)["data"])
    assert frame.height == 50 and (frame["age"] >= 50).all()
    assert set(frame["education"]) <= {"Bachelors", "Masters"} and set(frame["sex"]) == {"Female"}


def test_a_moved_input_is_recorded_as_unavailable(source_manifest: Path) -> None:
    manifest = json.loads(source_manifest.read_text())
    manifest["input"] = {**manifest["input"], "sha256": "0" * 64}
    reason = recorded_split(manifest, DatasetSpec.model_validate(manifest["spec"]))
    assert isinstance(reason, str) and "input is unavailable" in reason


def test_the_registered_pyfunc_takes_conditions_in_a_where_column(source_manifest: Path) -> None:
    import pandas as pd

    from fairdistill.tasks.services.generator_source import load_generator, resolve_source

    tracking_uri = load_settings().tracking_uri
    generator = load_generator(
        resolve_source(str(source_manifest), tracking_uri=tracking_uri), tracking_uri
    )
    requests = pd.DataFrame({"rows": [40, 30], "seed": [1, 2], "where": [["age < 30"], None]})
    rows = generator.predict(None, requests)
    assert len(rows) == 70
    assert (rows["age"].iloc[:40] < 30).all()
