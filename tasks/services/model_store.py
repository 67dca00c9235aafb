"""Store trained modules as safetensors plus their architecture; log them to MLflow.

Weights and priors go wherever the run's work and checkpoint roots are
(a local folder or any fsspec URI): they are serialised to bytes here and written through
:mod:`fairdistill.tasks.services.storage`, atomically on a local disk, as one object elsewhere.
Reads check the sha256 recorded at write time before parsing a single byte.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import torch
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
from fairdistill.tasks.services.storage import (
    Ref,
    read_unverified,
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
