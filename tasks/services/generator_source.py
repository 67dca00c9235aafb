"""Find a published run's registered generator: by its manifest, its MLflow run id, an alias
(``champion``, ``candidate``) or a version number, and load it from the registry.

Every way leads to one model version in the registry; loading it checks the sha256 of each
artifact against the digests recorded when the run registered it (see
:class:`~fairdistill.tasks.services.generator_model.FairSyntheticGenerator`). The manifest of
the run that published the version is found through the version's folder tag, so a
conditional draw can reload the recorded input for its evaluation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from fairdistill.models.errors import RegistryError
from fairdistill.tasks.services.generator_model import FairSyntheticGenerator
from fairdistill.tasks.services.registry import (
    CANDIDATE,
    CHAMPION,
    FOLDER_TAG,
    alias_holder,
)

MANIFEST_FILE = "manifest.json"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_VERSION = re.compile(r"^(?:version\s*|v)(\d+)$", re.IGNORECASE)
_MODEL_PREFIX = "fairdistill-"


@dataclass(frozen=True)
class GeneratorSource:
    """One registered generator version and the published run it came from."""

    requested: str
    model: str
    version: int
    manifest_path: Path | None
    manifest: dict[str, Any] | None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "model": self.model,
            "version": self.version,
            "model_uri": self.model_uri,
            "manifest": str(self.manifest_path) if self.manifest_path else None,
            "manifest_sha256": None if self.manifest is None else self.manifest.get("_sha256"),
            "run_id": None if self.manifest is None else self.manifest["mlflow"]["run_id"],
        }


def resolve_source(
    reference: str, *, tracking_uri: str, model: str | None = None
) -> GeneratorSource:
    """The registered version ``reference`` names: a manifest.json or published folder, an
    MLflow run id, ``champion``/``candidate``, or ``version N`` (the latter two of ``model``,
    by default the only fairdistill model in the registry)."""
    client = mlflow.MlflowClient(tracking_uri)
    text = reference.strip()
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix == ".json" or path.is_file():
        return _from_manifest(text, path / MANIFEST_FILE if path.is_dir() else path)
    if text.lower() in (CHAMPION, CANDIDATE):
        name = model or _only_model(client)
        version = alias_holder(_client_with_model(client, name), name, text.lower())
        if version is None:
            raise RegistryError(
                f"Model '{name}' has no '{text.lower()}' version yet",
                rule="generator-source",
                hint="publish a run (it becomes the candidate), or promote one to champion",
            )
        return _with_manifest(client, text, name, version)
    numbered = _VERSION.match(text)
    if numbered:
        name = model or _only_model(client)
        return _with_manifest(client, text, name, int(numbered.group(1)))
    if _RUN_ID.match(text):
        return _from_run_id(client, text)
    raise RegistryError(
        f"'{reference}' names no published run or registered generator",
        rule="generator-source",
        hint="give a published run's manifest.json, its MLflow run id, 'champion', "
        "'candidate' or 'version N'",
    )


def load_generator(source: GeneratorSource, tracking_uri: str) -> FairSyntheticGenerator:
    """The registered pyfunc's generator, its artifacts checked against their digests."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(source.model_uri)
    except MlflowException as error:
        raise RegistryError(
            f"The registry has no loadable model {source.model_uri} ({error.message[:200]})",
            rule="generator-source",
            hint="check MLFLOW_TRACKING_URI and that the version still exists",
        ) from error
    return model.unwrap_python_model()


def _from_manifest(requested: str, path: Path) -> GeneratorSource:
    manifest = read_manifest(path)
    registry = manifest.get("registry")
    if not registry:
        raise RegistryError(
            "This published run registered no generator (its manifest has no registry entry)",
            file=str(path),
            rule="generator-source",
            hint="publish the run with register_model true, or name a registered version",
        )
    return GeneratorSource(
        requested=requested,
        model=registry["model"],
        version=int(registry["version"]),
        manifest_path=path.resolve(),
        manifest=manifest,
    )


def read_manifest(path: Path) -> dict[str, Any]:
    """A published run's manifest, with its own sha256 under ``_sha256``."""
    from fairdistill.tasks.services.audit import file_digest

    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RegistryError(
            f"Cannot read the manifest ({type(error).__name__})",
            file=str(path),
            rule="generator-source",
            hint="give the manifest.json of a published run folder",
        ) from error
    if not isinstance(manifest, dict) or "mlflow" not in manifest:
        raise RegistryError(
            "This file is not the manifest of a published run",
            file=str(path),
            rule="generator-source",
            hint="give the manifest.json of a published run folder",
        )
    manifest["_sha256"] = file_digest(path)
    return manifest


def _with_manifest(
    client: mlflow.MlflowClient, requested: str, model: str, version: int
) -> GeneratorSource:
    """The version, with the manifest of the folder it was published to (when still there)."""
    try:
        found = client.get_model_version(model, str(version))
    except MlflowException as error:
        raise RegistryError(
            f"Model '{model}' has no version {version}",
            rule="generator-source",
            hint="see the model's versions in the MLflow UI",
        ) from error
    folder = found.tags.get(FOLDER_TAG)
    path = Path(folder) / MANIFEST_FILE if folder else None
    manifest = read_manifest(path) if path is not None and path.is_file() else None
    return GeneratorSource(requested, model, version, path if manifest else None, manifest)


def _from_run_id(client: mlflow.MlflowClient, run_id: str) -> GeneratorSource:
    """The version registered by a flow run (its parent run id) or by its publish stage."""
    for query in (f"tags.`fairdistill.parent_run_id` = '{run_id}'", f"run_id = '{run_id}'"):
        versions = [
            v for v in client.search_model_versions(query) if v.name.startswith(_MODEL_PREFIX)
        ]
        if versions:
            chosen = min(versions, key=lambda v: int(v.version))
            return _with_manifest(client, run_id, chosen.name, int(chosen.version))
    raise RegistryError(
        f"No registered generator comes from the MLflow run {run_id}",
        rule="generator-source",
        hint="give the run id 'fairdistill run' printed for a published run, or its manifest",
    )


def _only_model(client: mlflow.MlflowClient) -> str:
    names = sorted(
        model.name
        for model in client.search_registered_models()
        if model.name.startswith(_MODEL_PREFIX)
    )
    if len(names) == 1:
        return names[0]
    raise RegistryError(
        "The registry holds no fairdistill model"
        if not names
        else f"The registry holds several fairdistill models ({', '.join(names)})",
        rule="generator-source",
        hint="name one with --model fairdistill-<dataset>",
    )


def _client_with_model(client: mlflow.MlflowClient, name: str) -> mlflow.MlflowClient:
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        raise RegistryError(
            f"There is no registered model named '{name}'",
            rule="generator-source",
            hint="check the name (fairdistill-<dataset>) and MLFLOW_TRACKING_URI",
        ) from error
    return client
