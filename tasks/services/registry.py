"""The model registry: every published run's generator is a model version; aliases pick one.

``candidate`` moves automatically when a run passes its quality gates and is published;
a run whose generator is identical to a registered version's (an unchanged rerun: same
weights, codec, prior, code and gate results) reuses that version instead of adding one.
``champion`` moves only when a person runs ``fairdistill promote`` and gives a reason.
Consumers load ``models:/fairdistill-<dataset>@champion`` and never see a version nobody
approved.

Every alias move is recorded where an auditor looks for it: as tags on the model version
it moved to, on the version it left and on the registered model (the MLflow UI shows them),
and as one JSON line appended to ``approvals.jsonl`` both in the published run folder and
among the artifacts of the MLflow run that produced the version. Both logs only ever grow:
a line once written is never changed.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from pydantic import BaseModel, ConfigDict

from fairdistill.models.config import RunConfig
from fairdistill.models.errors import RegistryError
from fairdistill.models.gates import GateDecision
from fairdistill.tasks.services.caching import code_fingerprint
from fairdistill.tasks.services.generator_model import log_generator, sensitive_group_counts
from fairdistill.tasks.services.stage_outputs import (
    PreparedData,
    SyntheticData,
    TrainedModel,
    load_training_table,
)
from fairdistill.tasks.services.storage import Ref, read_bytes
from fairdistill.tasks.services.tracking import (
    MODEL_REQUIREMENTS,
    StageContext,
    one_process_at_a_time,
)

CANDIDATE = "candidate"
CHAMPION = "champion"
APPROVALS_FILE = "approvals.jsonl"
GENERATOR_ARTIFACT = "generator"
FOLDER_TAG = "fairdistill.published_folder"
GENERATOR_DIGEST_TAG = "fairdistill.generator_sha256"
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class RegisteredVersion(BaseModel):
    """Where a published run's generator sits in the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    alias: str
    # True: an earlier run registered this very generator; its version was reused.
    reused: bool = False


class AliasMove(BaseModel):
    """One line of the audit log: who moved which alias, when, from where, to where, why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    alias: str
    from_version: int | None
    to_version: int
    actor: str
    at: str
    reason: str


def registered_model_name(dataset_label: str) -> str:
    """``fairdistill-<dataset>``, with characters a registry name cannot hold replaced."""
    return f"fairdistill-{_NOT_IN_A_NAME.sub('-', dataset_label).strip('-') or 'dataset'}"


def current_user() -> str:
    # getpass fails for a user id without a passwd entry, common in containers.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def register_candidate(
    config: RunConfig,
    context: StageContext,
    run_name: str,
    folder: Path,
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
    synthetic: SyntheticData,
    decisions: list[GateDecision],
) -> RegisteredVersion:
    """Make the generator of a published run the ``candidate``: a new version, or the one
    an earlier run registered for an identical generator.

    Call inside the publish stage's MLflow run, which becomes a new version's source run,
    after the run folder is written: the alias moves only to a version whose data exists.
    """
    name = registered_model_name(config.dataset_label)
    digest = generator_digest(prepared, teacher, student, synthetic, decisions)
    client = mlflow.MlflowClient(context.tracking_uri)
    # Two identical runs finishing together must not both find no version and add two.
    with _registering(context.tracking_uri):
        version = identical_version(client, name, digest)
        reused = version is not None
        if version is None:
            version = _register_version(name, prepared, teacher, student, synthetic)
            tags = {
                GENERATOR_DIGEST_TAG: digest,
                FOLDER_TAG: str(folder),
                "fairdistill.run_name": run_name,
                "fairdistill.parent_run_id": context.parent_run_id,
                **_gate_tags(decisions),
            }
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, value)
        if alias_holder(client, name, CANDIDATE) != version:
            why = "its generator is identical to this version's" if reused else "was published"
            move_alias(
                client,
                name,
                CANDIDATE,
                version,
                reason=f"run {run_name} passed its quality gates and {why}",
                actor=current_user(),
            )
    mlflow.set_tags(
        {
            "fairdistill.registry.model": name,
            "fairdistill.registry.version": str(version),
            "fairdistill.registry.reused": str(reused).lower(),
        }
    )
    return RegisteredVersion(model=name, version=version, alias=CANDIDATE, reused=reused)


def generator_digest(
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
    synthetic: SyntheticData,
    decisions: list[GateDecision],
) -> str:
    """What makes a registered version what it is: its files, code and gate results."""
    payload = {
        "teacher": teacher.weights.sha256,
        "student": student.weights.sha256,
        "codec": prepared.codec.sha256,
        "prior": synthetic.prior.sha256 if synthetic.prior else None,
        # The generator keeps the training rows' sensitive group counts.
        "train": prepared.train.sha256,
        "code": code_fingerprint(),
        "requirements": MODEL_REQUIREMENTS,
        "gates": [decision.as_dict() for decision in decisions],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def identical_version(client: mlflow.MlflowClient, name: str, digest: str) -> int | None:
    """The oldest version registered with ``digest`` whose audit log can still be written."""
    try:
        versions = client.search_model_versions(
            f"name = '{name}' and tags.`{GENERATOR_DIGEST_TAG}` = '{digest}'"
        )
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return None
    # Moving an alias appends to the version's approvals.jsonl: a version whose published
    # folder is gone cannot take the alias again, so a new one is registered instead.
    usable = [
        int(version.version)
        for version in versions
        if version.tags.get(FOLDER_TAG) and os.access(version.tags[FOLDER_TAG], os.W_OK)
    ]
    return min(usable) if usable else None


def _register_version(
    name: str,
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
    synthetic: SyntheticData,
) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        files = _copy_verified(
            Path(scratch),
            {
                "teacher": teacher.weights,
                "student": student.weights,
                "codec": prepared.codec,
                **({"prior": synthetic.prior} if synthetic.prior else {}),
            },
        )
        _, table = load_training_table(prepared)
        info = log_generator(
            GENERATOR_ARTIFACT,
            files,
            sensitive_group_counts(table.sensitive),
            requirements=[f"fairdistill=={metadata.version('fairdistill')}", *MODEL_REQUIREMENTS],
            registered_model_name=name,
        )
    return int(info.registered_model_version)


def _gate_tags(decisions: list[GateDecision]) -> dict[str, str]:
    return {
        "fairdistill.gates": "passed" if decisions else "none set",
        **{
            f"fairdistill.gate.{d.gate}.{d.metric}": json.dumps(d.as_dict(), sort_keys=True)
            for d in decisions
        },
    }


@contextlib.contextmanager
def _registering(tracking_uri: str) -> Iterator[None]:
    """One registration at a time on a local SQLite store (a file lock beside it).

    A tracking server offers no lock: two identical runs finishing at the same moment on
    different machines may still register the same generator twice.
    """
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    with one_process_at_a_time(store.parent / f".{store.name}.registry.lock"):
        yield


def _copy_verified(folder: Path, refs: dict[str, Ref]) -> dict[str, Path]:
    """Local copies of the run's files, each checked against its recorded sha256."""
    copies = {}
    for key, ref in refs.items():
        # The work folder may be any fsspec URI: its last part names the file.
        copy = folder / ref.uri.rsplit("/", 1)[-1]
        copy.write_bytes(read_bytes(ref))
        copies[key] = copy
    return copies


def promote(
    model: str,
    version: int | None = None,
    *,
    reason: str,
    actor: str | None = None,
    tracking_uri: str | None = None,
) -> AliasMove:
    """Move ``champion`` to ``version`` (default: the ``candidate`` version) and record it."""
    if not reason.strip():
        raise RegistryError(
            "A promotion needs a reason",
            rule="promotion-reason",
            hint="say why this version should serve, e.g. --reason 'reviewed the fairness report'",
        )
    client = mlflow.MlflowClient(tracking_uri)
    _require_model(client, model)
    if version is None:
        version = alias_holder(client, model, CANDIDATE)
        if version is None:
            raise RegistryError(
                f"Model '{model}' has no '{CANDIDATE}' version to promote",
                rule="promotion-version",
                hint="name the version with --version",
            )
    if alias_holder(client, model, CHAMPION) == version:
        raise RegistryError(
            f"Version {version} of '{model}' is already the '{CHAMPION}'",
            rule="promotion-version",
            hint="name another version with --version",
        )
    return move_alias(
        client, model, CHAMPION, version, reason=reason.strip(), actor=actor or current_user()
    )


def _require_model(client: mlflow.MlflowClient, model: str) -> None:
    try:
        client.get_registered_model(model)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise RegistryError(
            f"There is no registered model named '{model}'",
            rule="registered-model",
            hint="check the name (fairdistill-<dataset>) and MLFLOW_TRACKING_URI",
        ) from error


def alias_holder(client: mlflow.MlflowClient, model: str, alias: str) -> int | None:
    """The version ``alias`` points to, or None when it points nowhere yet."""
    version = client.get_registered_model(model).aliases.get(alias)
    return None if version is None else int(version)


def _model_version(client: mlflow.MlflowClient, model: str, version: int) -> ModelVersion:
    try:
        return client.get_model_version(model, str(version))
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise RegistryError(
            f"Model '{model}' has no version {version}",
            rule="promotion-version",
            hint="see the versions on the model's page in the MLflow UI",
        ) from error


def move_alias(
    client: mlflow.MlflowClient,
    model: str,
    alias: str,
    version: int,
    *,
    reason: str,
    actor: str,
) -> AliasMove:
    """Point ``alias`` at ``version`` and record the move in tags and both audit logs."""
    target = _model_version(client, model, version)
    folder = Path(target.tags.get(FOLDER_TAG, ""))
    # Checked before the move, so a move never happens without its audit line.
    if not target.tags.get(FOLDER_TAG) or not os.access(folder, os.W_OK):
        raise RegistryError(
            f"Version {version} of '{model}' has no writable published run folder for its "
            f"audit log (tag {FOLDER_TAG} = '{target.tags.get(FOLDER_TAG, '')}')",
            file=str(folder),
            rule="audit-log",
            hint="run this where the published folder is mounted, with write access",
        )
    move = AliasMove(
        model=model,
        alias=alias,
        from_version=alias_holder(client, model, alias),
        to_version=version,
        actor=actor,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
    )
    client.set_registered_model_alias(model, alias, str(version))
    line = move.model_dump_json() + "\n"
    append_line(folder / APPROVALS_FILE, line)
    append_run_artifact(client, target.run_id, APPROVALS_FILE, line)
    record = move.model_dump_json(exclude={"model", "alias"})
    client.set_model_version_tag(model, str(version), f"fairdistill.alias.{alias}", record)
    if move.from_version is not None:
        client.set_model_version_tag(
            model, str(move.from_version), f"fairdistill.alias.{alias}.moved_away", record
        )
    client.set_registered_model_tag(model, f"fairdistill.alias.{alias}.last_move", record)
    return move


def append_line(path: Path, line: str) -> None:
    # Append mode: earlier lines are never rewritten, even by a crash in the middle.
    with path.open("a", encoding="utf-8") as stream:
        stream.write(line)
        stream.flush()
        os.fsync(stream.fileno())


def append_run_artifact(client: mlflow.MlflowClient, run_id: str, name: str, line: str) -> None:
    """Add ``line`` to the run's artifact ``name``; its earlier lines are kept as they were.

    Artifact stores cannot append, so the file is uploaded again with the line added.
    """
    with tempfile.TemporaryDirectory() as scratch:
        existing = ""
        if any(entry.path == name for entry in client.list_artifacts(run_id)):
            existing = Path(client.download_artifacts(run_id, name, scratch)).read_text("utf-8")
        upload = Path(scratch) / "upload" / name
        upload.parent.mkdir()
        upload.write_text(existing + line, encoding="utf-8")
        client.log_artifact(run_id, str(upload))


def read_audit_log(path: Path) -> list[AliasMove]:
    return [
        AliasMove.model_validate_json(line)
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]
