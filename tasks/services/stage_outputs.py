"""What one stage hands the next: references (a URI plus a sha256) and a few counts.

Stages never pass frames or modules: a reference keeps Prefect's inputs small and hashable,
lets a stage run on another machine that reads the same storage, and makes every
intermediate auditable. The readers below turn a reference back into the value it names,
checking its digest first.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import yaml
from pydantic import BaseModel, ConfigDict

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.modality import Codec, codec_from_dict
from fairdistill.models.spec import DatasetSpec, parse_spec
from fairdistill.models.teacher import FairVAE
from fairdistill.tasks.services.model_store import load_module
from fairdistill.tasks.services.storage import Ref, read_bytes, read_json, read_parquet


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _StageOutput(_Output):
    """What a stage returns; it names the MLflow run of the stage that computed it.

    A stage reused from an earlier flow run hands on that run's output, so its
    ``stage_run_id`` says where the work was done and recorded. That is provenance, not
    content: fields named in ``NOT_IN_CACHE_KEY`` stay out of later stages' cache keys.
    """

    NOT_IN_CACHE_KEY: ClassVar[frozenset[str]] = frozenset({"stage_run_id"})

    stage_run_id: str | None = None


class InputSource(_Output):
    data_path: str
    spec_path: str
    sha256: str


class ValidatedInput(_StageOutput):
    """The validated table (parquet in the run folder) and its completed spec."""

    source: InputSource
    table: Ref
    spec: Ref
    validation: Ref
    rows: int


class PreparedData(_StageOutput):
    train: Ref
    test: Ref
    codec: Ref
    spec: Ref
    train_rows: int
    test_rows: int


class TrainedModel(_StageOutput):
    NOT_IN_CACHE_KEY: ClassVar[frozenset[str]] = frozenset({"stage_run_id", "resumed_from_epoch"})

    weights: Ref
    mlflow_model_uri: str
    parameters: int
    encoder_parameters: int
    # The epoch (counted from 1) whose checkpoint the training continued from; None: it
    # trained from the first epoch.
    resumed_from_epoch: int | None = None


class SyntheticData(_StageOutput):
    table: Ref
    prior: Ref | None
    rows: int
    # Rows each of the spec's constraints repaired on decoding, by constraint name.
    repaired: dict[str, int] = {}


class EvaluationOutcome(_StageOutput):
    metrics: dict[str, float]
    headline: dict[str, float]
    results: Ref
    report: Ref


def read_spec(ref: Ref) -> DatasetSpec:
    return parse_spec(yaml.safe_load(read_bytes(ref)), source=ref.uri)


def load_training_table(prepared: PreparedData) -> tuple[Codec, EncodedTable]:
    """The fitted codec and the training rows it encodes."""
    codec = codec_from_dict(read_json(prepared.codec))
    return codec, codec.encode(read_parquet(prepared.train))


def load_teacher(teacher: TrainedModel, device: torch.device | str = "cpu") -> FairVAE:
    model = load_module(teacher.weights, device)
    assert isinstance(model, FairVAE), f"{teacher.weights.uri} does not hold a teacher"
    return model
