"""What one stage hands the next: references (a URI plus a sha256) and a few counts.

Stages never pass frames or modules: a reference keeps Prefect's inputs small and hashable,
lets a stage run on another machine that reads the same storage, and makes every
intermediate auditable. The readers below turn a reference back into the value it names,
checking its digest first.
"""

from __future__ import annotations

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


class InputSource(_Output):
    data_path: str
    spec_path: str
    sha256: str


class ValidatedInput(_Output):
    """The validated table (parquet in the run folder) and its completed spec."""

    source: InputSource
    table: Ref
    spec: Ref
    validation: Ref
    rows: int


class PreparedData(_Output):
    train: Ref
    test: Ref
    codec: Ref
    spec: Ref
    train_rows: int
    test_rows: int


class TrainedModel(_Output):
    weights: Ref
    mlflow_model_uri: str
    parameters: int
    encoder_parameters: int


class SyntheticData(_Output):
    table: Ref
    prior: Ref | None
    rows: int


class EvaluationOutcome(_Output):
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
