"""The model registry: candidate registration, promotion, and the append-only audit trail."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import polars as pl
import pytest
from typer.testing import CliRunner

from fairdistill.data import bundled_dataset
from fairdistill.flows.cli import app
from fairdistill.models.checkpoint import save_arrays, save_state
from fairdistill.models.codec import TabularCodec
from fairdistill.models.config import RunConfig
from fairdistill.models.errors import CheckpointError, RegistryError
from fairdistill.models.gates import GateDecision
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.student import StudentConfig, build_student
from fairdistill.models.teacher import FairVAE, TeacherConfig, encode_latents
from fairdistill.tasks.services.registry import (
    APPROVALS_FILE,
    CANDIDATE,
    CHAMPION,
    FOLDER_TAG,
    RegisteredVersion,
    alias_holder,
    promote,
    read_audit_log,
    register_candidate,
    registered_model_name,
)
from fairdistill.tasks.services.stage_outputs import PreparedData, SyntheticData, TrainedModel
from fairdistill.tasks.services.storage import Ref, write_json, write_parquet
from fairdistill.tasks.services.tracking import StageContext

ROWS = 400
PASSED_GATE = GateDecision("max_exact_copy_rate", "privacy.exact_copy_rate", "<=", 0.05, 0.0, True)
OTHER_GATE = GateDecision("min_coverage", "fidelity.coverage", ">=", 0.5, 0.9, True)
PASSED = (PASSED_GATE,)


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    experiment_id: str
    root: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A fresh SQLite MLflow store with its own experiment, set as the tracking URI."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which fairdistill's settings read:
    # restoring only the URI would leave later tests tracking into the working folder.
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        experiment_id = mlflow.create_experiment(
            "registry", artifact_location=(root / "artifacts").as_uri()
        )
        yield Store(uri, experiment_id, root)


@dataclass(frozen=True)
class RunFiles:
    config: RunConfig
    prepared: PreparedData
    teacher: TrainedModel
    student: TrainedModel
    synthetic: SyntheticData
    frame: pl.DataFrame


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory, adult_sample: pl.DataFrame) -> RunFiles:
    """The files a run hands to publish, from small untrained models (fast, still valid)."""
    folder = tmp_path_factory.mktemp("work")
    frame = adult_sample.head(ROWS)
    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), frame)
    codec = TabularCodec.fit(frame, spec)
    levels = codec.sensitive_level_counts
    teacher = FairVAE.build(codec.blocks, levels, TeacherConfig(hidden=(32, 32), latent_dim=4))
    student = build_student(teacher, StudentConfig(hidden=(4,)))
    prior = GaussianMixturePrior.fit(encode_latents(student, codec.encode(frame), levels), 3)

    def weights(name: str, module: object) -> TrainedModel:
        path = folder / f"{name}.safetensors"
        digest = save_state(path, module.state_dict(), {"architecture": module.architecture()})  # type: ignore[attr-defined]
        return TrainedModel(
            weights=Ref(uri=str(path), sha256=digest),
            mlflow_model_uri="",
            parameters=0,
            encoder_parameters=0,
        )

    train = write_parquet(str(folder / "train.parquet"), frame)
    prior_path = folder / "prior.safetensors"
    prior_digest = save_arrays(prior_path, prior.to_arrays(), {"kind": "prior"})
    data = {"data": str(folder / "train.parquet"), "spec": bundled_dataset("adult").spec_path}
    return RunFiles(
        config=RunConfig.model_validate({k: str(v) for k, v in data.items()}),
        prepared=PreparedData(
            train=train,
            test=train,
            codec=write_json(str(folder / "codec.json"), codec.to_dict()),
            spec=train,
            train_rows=ROWS,
            test_rows=ROWS,
        ),
        teacher=weights("teacher", teacher),
        student=weights("student", student),
        synthetic=SyntheticData(
            table=train, prior=Ref(uri=str(prior_path), sha256=prior_digest), rows=ROWS
        ),
        frame=frame,
    )


def publish_version(
    store: Store,
    run_files: RunFiles,
    folder: Path,
    gates: tuple[GateDecision, ...] = (PASSED_GATE,),
) -> int:
    """What publish does once the run folder exists: register inside the publish run."""
    return publish(store, run_files, folder, gates).version


def publish(
    store: Store, run_files: RunFiles, folder: Path, gates: tuple[GateDecision, ...]
) -> RegisteredVersion:
    folder.mkdir(parents=True)
    with mlflow.start_run(experiment_id=store.experiment_id) as parent:
        context = StageContext(
            tracking_uri=store.tracking_uri,
            experiment_id=store.experiment_id,
            parent_run_id=parent.info.run_id,
            work_uri=str(folder.parent),
            checkpoint_root=str(folder.parent),
        )
        with mlflow.start_run(experiment_id=store.experiment_id, nested=True):
            registered = register_candidate(
                run_files.config,
                context,
                folder.name,
                folder,
                run_files.prepared,
                run_files.teacher,
                run_files.student,
                run_files.synthetic,
                list(gates),
            )
    assert registered.alias == CANDIDATE
    return registered


@pytest.fixture(scope="module")
def two_versions(store: Store, run_files: RunFiles) -> tuple[str, int, int]:
    first = publish_version(store, run_files, store.root / "published" / "first")
    # Other gate results make another generator record: a new version.
    second = publish_version(
        store, run_files, store.root / "published" / "second", (PASSED_GATE, OTHER_GATE)
    )
    return registered_model_name("train"), first, second


def version_folder(model: str, version: int) -> Path:
    return Path(mlflow.MlflowClient().get_model_version(model, str(version)).tags[FOLDER_TAG])


def run_artifact_log(model: str, version: int, tmp_path: Path) -> str:
    client = mlflow.MlflowClient()
    run_id = client.get_model_version(model, str(version)).run_id
    return Path(client.download_artifacts(run_id, APPROVALS_FILE, str(tmp_path))).read_text()


def test_model_names_keep_only_characters_a_registry_accepts() -> None:
    assert registered_model_name("adult") == "fairdistill-adult"
    assert registered_model_name("my data/2024:q1") == "fairdistill-my-data-2024-q1"


def test_each_published_run_becomes_the_candidate_with_its_gate_results(
    two_versions: tuple[str, int, int],
) -> None:
    model, first, second = two_versions
    client = mlflow.MlflowClient()

    assert second == first + 1
    assert alias_holder(client, model, CANDIDATE) == second
    tags = client.get_model_version(model, str(second)).tags
    gate = json.loads(tags["fairdistill.gate.max_exact_copy_rate.privacy.exact_copy_rate"])
    assert gate["passed"] is True and gate["threshold"] == 0.05
    assert tags["fairdistill.gates"] == "passed"
    moved = json.loads(tags[f"fairdistill.alias.{CANDIDATE}"])
    assert moved["from_version"] == first and moved["actor"] == getpass.getuser()
    assert (
        json.loads(
            client.get_model_version(model, str(first)).tags[
                f"fairdistill.alias.{CANDIDATE}.moved_away"
            ]
        )["to_version"]
        == second
    )


def test_the_candidate_move_is_the_first_line_of_both_audit_logs(
    two_versions: tuple[str, int, int], tmp_path: Path
) -> None:
    model, first, second = two_versions

    (entry,) = read_audit_log(version_folder(model, second) / APPROVALS_FILE)
    assert (entry.alias, entry.from_version, entry.to_version) == (CANDIDATE, first, second)
    assert entry.at.endswith("+00:00")
    assert run_artifact_log(model, second, tmp_path) == entry.model_dump_json() + "\n"


def test_the_registered_generator_samples_and_transforms_rows(
    two_versions: tuple[str, int, int], run_files: RunFiles
) -> None:
    model, _, _ = two_versions
    generator = mlflow.pyfunc.load_model(f"models:/{model}@{CANDIDATE}")

    sampled = generator.predict(pl.DataFrame({"rows": [50, 30], "seed": [1, 2]}).to_pandas())
    again = generator.predict(pl.DataFrame({"rows": [50], "seed": [1]}).to_pandas())
    transformed = generator.predict(run_files.frame.head(20).to_pandas())

    assert list(sampled.columns) == run_files.frame.columns and len(sampled) == 80
    assert sampled.head(50).equals(again)
    assert set(sampled["sex"]) <= set(run_files.frame["sex"].to_list())
    assert len(transformed) == 20 and list(transformed.columns) == run_files.frame.columns
    assert transformed["sex"].tolist() == run_files.frame.head(20)["sex"].to_list()


def test_the_registered_generator_is_code_and_safetensors_never_a_pickle(
    two_versions: tuple[str, int, int], tmp_path: Path
) -> None:
    model, first, _ = two_versions
    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{model}/{first}", dst_path=str(tmp_path))
    )
    files = {path.name for path in local.rglob("*") if path.is_file()}
    assert not any(name.endswith((".pkl", ".pickle", ".cloudpickle")) for name in files)
    assert "generator_entry.py" in files
    assert {"teacher.safetensors", "student.safetensors", "codec.json"} <= files


def test_a_generator_whose_files_changed_refuses_to_load(
    two_versions: tuple[str, int, int], tmp_path: Path
) -> None:
    model, first, _ = two_versions
    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{model}/{first}", dst_path=str(tmp_path))
    )
    (weights,) = local.rglob("teacher.safetensors")
    content = weights.read_bytes()
    weights.write_bytes(content[:-1] + bytes([content[-1] ^ 0xFF]))  # a changed last byte

    with pytest.raises(CheckpointError, match="teacher"):
        mlflow.pyfunc.load_model(str(local))


def test_promote_moves_champion_and_appends_to_both_logs(
    two_versions: tuple[str, int, int], tmp_path: Path
) -> None:
    model, first, second = two_versions
    client = mlflow.MlflowClient()
    before = (version_folder(model, second) / APPROVALS_FILE).read_text()

    to_first = promote(model, first, reason="reviewed the first report", actor="alice")
    to_candidate = promote(model, reason="the newer run is better")

    assert alias_holder(client, model, CHAMPION) == second
    assert (to_first.from_version, to_first.to_version, to_first.actor) == (None, first, "alice")
    assert (to_candidate.from_version, to_candidate.to_version) == (first, second)
    assert to_candidate.actor == getpass.getuser()
    log = (version_folder(model, second) / APPROVALS_FILE).read_text()
    assert log.startswith(before)
    assert read_audit_log(version_folder(model, second) / APPROVALS_FILE)[-1] == to_candidate
    artifact = run_artifact_log(model, second, tmp_path)
    assert artifact.startswith(before) and artifact.endswith(to_candidate.model_dump_json() + "\n")
    assert read_audit_log(version_folder(model, first) / APPROVALS_FILE)[-1] == to_first
    last = json.loads(
        client.get_registered_model(model).tags["fairdistill.alias.champion.last_move"]
    )
    assert (last["to_version"], last["reason"]) == (second, "the newer run is better")
    moved_away = client.get_model_version(model, str(first)).tags
    assert json.loads(moved_away["fairdistill.alias.champion.moved_away"])["to_version"] == second
    with pytest.raises(RegistryError, match="already"):
        promote(model, second, reason="again")


@pytest.mark.parametrize(
    ("model", "version", "reason", "rule"),
    [
        ("fairdistill-missing", None, "why not", "registered-model"),
        (None, 99, "why not", "promotion-version"),
        (None, None, "  ", "promotion-reason"),
    ],
)
def test_promote_refuses_what_it_cannot_record(
    two_versions: tuple[str, int, int],
    model: str | None,
    version: int | None,
    reason: str,
    rule: str,
) -> None:
    name = model or two_versions[0]
    champion_before = alias_holder(mlflow.MlflowClient(), name, CHAMPION) if model is None else None

    with pytest.raises(RegistryError) as raised:
        promote(name, version, reason=reason)

    assert raised.value.rule == rule
    if model is None:
        assert alias_holder(mlflow.MlflowClient(), name, CHAMPION) == champion_before


def test_promote_refuses_a_version_without_its_published_folder(
    store: Store, two_versions: tuple[str, int, int]
) -> None:
    model = two_versions[0]
    client = mlflow.MlflowClient()
    run = client.create_run(store.experiment_id)
    orphan = client.create_model_version(model, source="runs:/x/generator", run_id=run.info.run_id)
    client.set_model_version_tag(model, orphan.version, FOLDER_TAG, str(store.root / "gone"))
    champion = alias_holder(client, model, CHAMPION)

    with pytest.raises(RegistryError, match="audit log"):
        promote(model, int(orphan.version), reason="try")

    assert alias_holder(client, model, CHAMPION) == champion != int(orphan.version)


def test_cli_promote_prints_the_move_and_exits_2_on_a_bad_request(
    store: Store, two_versions: tuple[str, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, first, _ = two_versions
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    runner = CliRunner()

    moved = runner.invoke(
        app,
        [
            "promote",
            "--model",
            model,
            "--version",
            str(first),
            "--reason",
            "audit",
            "--actor",
            "bob",
        ],
    )
    refused = runner.invoke(app, ["promote", "--model", "fairdistill-nope", "--reason", "x"])

    assert moved.exit_code == 0, moved.output
    assert f"{model}@champion:" in moved.output and f"-> version {first} (by bob" in moved.output
    assert read_audit_log(version_folder(model, first) / APPROVALS_FILE)[-1].actor == "bob"
    assert refused.exit_code == 2
    assert "no registered model named 'fairdistill-nope'" in refused.output


# Last: it moves the candidate alias, which the tests above rely on.
def test_an_unchanged_rerun_reuses_its_version_and_takes_the_alias_back(
    store: Store, run_files: RunFiles, two_versions: tuple[str, int, int]
) -> None:
    model, first, second = two_versions
    client = mlflow.MlflowClient()
    versions_before = len(client.search_model_versions(f"name = '{model}'"))

    again = publish(store, run_files, store.root / "published" / "again", (PASSED_GATE,))
    once_more = publish(store, run_files, store.root / "published" / "once-more", (PASSED_GATE,))

    assert (again.version, again.reused) == (first, True)
    assert (once_more.version, once_more.reused) == (first, True)
    assert len(client.search_model_versions(f"name = '{model}'")) == versions_before
    # The candidate moved back to the reused version once, recorded in its audit log.
    moves = read_audit_log(version_folder(model, first) / APPROVALS_FILE)
    assert [(m.alias, m.from_version, m.to_version) for m in moves[-1:]] == [
        (CANDIDATE, second, first)
    ]
    assert "identical" in moves[-1].reason
    assert not (store.root / "published" / "again" / APPROVALS_FILE).exists()
    publish_run = client.get_run(client.get_model_version(model, str(first)).run_id)
    assert publish_run.data.tags["fairdistill.registry.reused"] == "false"
