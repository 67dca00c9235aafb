"""Store trained modules as safetensors plus their architecture; log them to MLflow.

Weights, priors and epoch checkpoints go wherever the run's work and checkpoint roots are
(a local folder or any fsspec URI): they are serialised to bytes here and written through
:mod:`fairdistill.tasks.services.storage`, atomically on a local disk, as one object elsewhere.
Reads check the sha256 recorded at write time before parsing a single byte.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import torch
from prefect.logging import get_run_logger
from torch import Tensor, nn

from fairdistill.models.architectures import module_from_state
from fairdistill.models.checkpoint import (
    arrays_from_bytes,
    arrays_to_bytes,
    state_from_bytes,
    state_to_bytes,
    verify_sha256,
)
from fairdistill.models.errors import CheckpointError
from fairdistill.tasks.services.caching import stage_key
from fairdistill.tasks.services.storage import (
    Ref,
    exists,
    join_uri,
    read_unverified,
    remove,
    write_bytes,
)
from fairdistill.tasks.services.tracking import MODEL_REQUIREMENTS, StageContext


def save_arrays_to(uri: str, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> Ref:
    """Write numpy arrays (a fitted prior) as safetensors at ``uri``; return its reference."""
    return write_bytes(uri, arrays_to_bytes(arrays, metadata))


def load_arrays_from(ref: Ref) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of :func:`save_arrays_to`, refused if the sha256 differs."""
    return arrays_from_bytes(read_verified_model(ref.uri, ref.sha256), ref.uri)


def save_module(context: StageContext, name: str, module: nn.Module) -> Ref:
    payload = state_to_bytes(module.state_dict(), {"architecture": module.architecture()})
    return write_bytes(context.work_file(f"{name}.safetensors"), payload)


def load_module(ref: Ref, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a module; refuses a file whose sha256 differs from the reference's."""
    tensors, metadata = load_tensors(ref.uri, ref.sha256)
    return module_from_state(metadata["architecture"], tensors).to(device)


def load_tensors(uri: str, expected_sha256: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    return state_from_bytes(read_verified_model(uri, expected_sha256), uri)


def read_verified_model(uri: str, expected_sha256: str) -> bytes:
    """The bytes of a stored model, refused when missing or changed since written."""
    payload = read_unverified(uri)
    if payload is None:
        raise CheckpointError(
            "The stored model cannot be read: no such file",
            file=uri,
            rule="checkpoint-readable",
            hint="check the path, or re-run the stage that writes it",
        )
    verify_sha256(payload, expected_sha256, uri)
    return payload


class EncoderForServing(nn.Module):
    """One-input view of an encoder for MLflow: [features | label one-hot | s one-hot] → z mean."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_dim = int(encoder.in_dim)

    def forward(self, inputs: Tensor) -> Tensor:
        features, condition = inputs[:, : self.feature_dim], inputs[:, self.feature_dim :]
        mean, _ = self.encoder(features, condition)
        return mean


def log_encoder(name: str, encoder: nn.Module, example: Tensor) -> str:
    """Log an encoder as an MLflow model with signature and input example; return its URI."""
    serving = EncoderForServing(encoder.to("cpu").eval()).eval()
    example_np = example.detach().cpu().numpy()
    info = mlflow.pytorch.log_model(
        serving,
        name=name,
        input_example=example_np,
        pip_requirements=MODEL_REQUIREMENTS,
        # torch.export's archive holds a traced graph: loading it runs no pickled code.
        serialization_format="pt2",
    )
    return info.model_uri


class EpochCheckpoint:
    """The latest training state of a stage, saved after every epoch to resume after a crash.

    The folder (local or any fsspec URI) is keyed by the stage's cache key, so only a rerun
    with the same input, config and code resumes from it. A digest file written after the
    checkpoint lets a resume refuse a checkpoint changed since (tampered with, or
    half-copied).
    """

    def __init__(self, folder: str, stage: str) -> None:
        self.stage = stage
        self.uri = join_uri(folder, f"{stage}.safetensors")
        self.digest_uri = join_uri(folder, f"{stage}.sha256")

    @classmethod
    def for_stage(cls, context: StageContext, stage: str, *inputs: Any) -> EpochCheckpoint:
        """The checkpoint of ``stage`` run on ``inputs`` (its parameters, in order)."""
        key = stage_key(stage, {str(index): value for index, value in enumerate(inputs)})
        return cls(join_uri(context.checkpoint_root, key[:32]), stage)

    def resume(self) -> dict[str, Tensor] | None:
        """The saved state to continue from, if an earlier attempt left one."""
        saved = self.load()
        if saved is None:
            return None
        epoch, tensors = saved
        get_run_logger().info("resuming %s after epoch %d", self.stage, epoch)
        mlflow.log_param("resumed_after_epoch", epoch)
        return tensors

    def load(self) -> tuple[int, dict[str, Tensor]] | None:
        # The digest is written last: without it, the checkpoint may be half-written.
        digest = read_unverified(self.digest_uri)
        if digest is None or not exists(self.uri):
            return None
        tensors, metadata = load_tensors(self.uri, digest.decode("utf-8").strip())
        return int(metadata["epoch"]), tensors

    def save(self, epoch: int, tensors: dict[str, Tensor]) -> None:
        stored = write_bytes(self.uri, state_to_bytes(tensors, {"epoch": epoch}))
        write_bytes(self.digest_uri, stored.sha256.encode("utf-8"))

    def clear(self) -> None:
        # Digest first: a crash in between leaves a checkpoint that is never resumed from.
        remove(self.digest_uri)
        remove(self.uri)
