"""Store trained modules as safetensors plus their architecture; log them to MLflow."""

from __future__ import annotations

import mlflow
import torch
from torch import Tensor, nn

from fairdistill.models.checkpoint import load_state, save_state
from fairdistill.models.networks import module_from_state
from fairdistill.tasks.storage import Ref
from fairdistill.tasks.tracking import MODEL_REQUIREMENTS, StageContext


def save_module(context: StageContext, name: str, module: nn.Module) -> Ref:
    path = context.work_file(f"{name}.safetensors")
    digest = save_state(path, module.state_dict(), {"architecture": module.architecture()})
    return Ref(uri=path, sha256=digest)


def load_module(ref: Ref, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a module; refuses a file whose sha256 differs from the reference's."""
    tensors, metadata = load_state(ref.path, expected_sha256=ref.sha256)
    return module_from_state(metadata["architecture"], tensors).to(device)


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
    )
    return info.model_uri
