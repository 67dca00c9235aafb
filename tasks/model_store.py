"""Store trained modules as safetensors plus their architecture; log them to MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import torch
from prefect.logging import get_run_logger
from pydantic import BaseModel
from torch import Tensor, nn

from fairdistill.models.checkpoint import load_state, save_state
from fairdistill.models.networks import module_from_state
from fairdistill.tasks.caching import stage_key
from fairdistill.tasks.storage import Ref, write_bytes
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
        # torch.export's archive holds a traced graph: loading it runs no pickled code.
        serialization_format="pt2",
    )
    return info.model_uri


class EpochCheckpoint:
    """The latest training state of a stage, saved after every epoch to resume after a crash.

    The folder is keyed by the stage's cache key, so only a rerun with the same input,
    config and code resumes from it. A digest file written after the checkpoint lets a
    resume refuse a checkpoint changed since (tampered with, or half-copied).
    """

    def __init__(self, folder: Path, stage: str) -> None:
        self.path = folder / f"{stage}.safetensors"
        self.digest_path = folder / f"{stage}.sha256"

    @classmethod
    def for_stage(cls, context: StageContext, stage: str, *inputs: BaseModel) -> EpochCheckpoint:
        key = stage_key(stage, {str(index): value for index, value in enumerate(inputs)})
        return cls(Path(context.checkpoint_root) / key[:32], stage)

    def resume(self) -> dict[str, Tensor] | None:
        """The saved state to continue from, if an earlier attempt left one."""
        saved = self.load()
        if saved is None:
            return None
        epoch, tensors = saved
        get_run_logger().info("resuming %s after epoch %d", self.path.stem, epoch)
        mlflow.log_param("resumed_after_epoch", epoch)
        return tensors

    def load(self) -> tuple[int, dict[str, Tensor]] | None:
        if not (self.path.exists() and self.digest_path.exists()):
            return None
        expected = self.digest_path.read_text(encoding="utf-8").strip()
        tensors, metadata = load_state(self.path, expected_sha256=expected)
        return int(metadata["epoch"]), tensors

    def save(self, epoch: int, tensors: dict[str, Tensor]) -> None:
        digest = save_state(self.path, tensors, {"epoch": epoch})
        write_bytes(str(self.digest_path), digest.encode("utf-8"))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.digest_path.unlink(missing_ok=True)
