"""What a training stage records: its epochs as they pass, the latent's fairness, its
history and a latent sample for the run report, and a serving example for the logged model.

The history is the list the training loop returns, complete even when training resumed
from a checkpoint (the MLflow metric history of a resumed attempt starts at the resume).
The latent sample is a seeded draw of at most :data:`LATENT_SAMPLE_ROWS` training rows:
their latent means and their sensitive values, enough to draw what fairness looks like.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import torch
from prefect.logging import get_run_logger

from fairdistill.models.blocks import EncodedTable, one_hot_sensitive
from fairdistill.models.codec import TabularCodec
from fairdistill.models.modality import Codec
from fairdistill.models.stages import probe_latent
from fairdistill.models.teacher import encode_latents
from fairdistill.models.training import encoder_condition
from fairdistill.tasks.services import progress
from fairdistill.tasks.services.storage import Ref, parquet_bytes, write_bytes
from fairdistill.tasks.services.tracking import StageContext, log_metrics

LATENT_SAMPLE_ROWS = 2000
EXAMPLE_ROWS = 5
HISTORY_ARTIFACT = "training/history.json"
LATENT_ARTIFACT_FOLDER = "training"
LATENT_ARTIFACT_NAME = "latent_sample.parquet"
LATENT_COLUMN = "latent"
SENSITIVE_PREFIX = "sensitive."


def latent_sample(
    encoder: torch.nn.Module,
    table: EncodedTable,
    codec: TabularCodec,
    seed: int,
    rows: int = LATENT_SAMPLE_ROWS,
) -> pl.DataFrame:
    """Latent means of a seeded sample of rows, with each row's sensitive values.

    Columns: ``latent`` (a fixed-size float array) and ``sensitive.<column>`` (strings).
    """
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(table), size=min(rows, len(table)), replace=False))
    subset = EncodedTable(
        features=table.features[chosen],
        sensitive=table.sensitive[chosen],
        label=table.label[chosen],
    )
    latents = encode_latents(encoder, subset, codec.sensitive_level_counts)
    columns = [pl.Series(LATENT_COLUMN, latents, dtype=pl.Array(pl.Float32, latents.shape[1]))]
    for index, (name, levels) in enumerate(
        zip(codec.sensitive_columns, codec.sensitive_levels, strict=True)
    ):
        values = np.asarray(levels, dtype=object)[subset.sensitive[:, index]]
        columns.append(pl.Series(f"{SENSITIVE_PREFIX}{name}", values, dtype=pl.String))
    return pl.DataFrame(columns)


def split_latent_sample(frame: pl.DataFrame) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The latent matrix and the sensitive values per attribute of a :func:`latent_sample`."""
    latents = frame.get_column(LATENT_COLUMN).to_numpy()
    groups = {
        name.removeprefix(SENSITIVE_PREFIX): frame.get_column(name).to_list()
        for name in frame.columns
        if name.startswith(SENSITIVE_PREFIX)
    }
    return np.asarray(latents, dtype=np.float32), groups


def record_training(
    context: StageContext,
    name: str,
    encoder: torch.nn.Module,
    table: EncodedTable,
    codec: TabularCodec,
    seed: int,
    history: Sequence[dict[str, float]],
) -> Ref:
    """Save the latent sample in the work folder and, with the history, in the active MLflow run."""
    data = parquet_bytes(latent_sample(encoder, table, codec, seed))
    ref = write_bytes(context.work_file(f"{name}_{LATENT_ARTIFACT_NAME}"), data)
    with tempfile.TemporaryDirectory() as folder:
        # MLflow logs local files; the work folder may be remote.
        local = Path(folder) / LATENT_ARTIFACT_NAME
        local.write_bytes(data)
        mlflow.log_artifact(str(local), LATENT_ARTIFACT_FOLDER)
    mlflow.log_dict(
        {"history": list(history), "latent_sample_sha256": ref.sha256}, HISTORY_ARTIFACT
    )
    return ref


def epoch_logger(stage: str, epochs: int) -> Callable[[int, dict[str, float]], None]:
    """Each epoch's means go to MLflow, the log and the live display."""
    logger = get_run_logger()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log_metrics(metrics, step=epoch)
        summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        logger.info("%s epoch %d/%d: %s", stage, epoch + 1, epochs, summary)
        progress.epoch_finished(stage, epoch=epoch, epochs=epochs, metrics=metrics)

    return on_epoch


class RetryLog:
    """Counts a distillation's attempts and puts each retry in the run log (as a warning)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.attempts = 1
        self._logger = get_run_logger()

    def __call__(self, attempt: int, gap: float) -> None:
        self.attempts = attempt
        self._logger.warning(
            "%s: the student's latent gives the sensitive attributes away %.2f probe AUROC "
            "beyond its teacher's; distilling again from another start (attempt %d)",
            self.stage,
            gap,
            attempt,
        )


def log_latent_fairness(
    encoder: torch.nn.Module, table: EncodedTable, codec: Codec, seed: int
) -> dict[str, float]:
    """How much of each sensitive attribute a probe still reads from the latent."""
    metrics = {
        f"probe_auroc.{name}": value
        for name, value in probe_latent(encoder, table, codec, seed).items()
    }
    log_metrics(metrics)
    return metrics


def serving_example(table: EncodedTable, codec: Codec) -> torch.Tensor:
    """A few rows as the logged encoder takes them: [features | label, s one-hots]."""
    rows = slice(0, EXAMPLE_ROWS)
    sensitive = one_hot_sensitive(table.sensitive[rows], codec.sensitive_level_counts)
    condition = encoder_condition(table.label[rows], sensitive)
    return torch.as_tensor(np.concatenate([table.features[rows], condition], axis=1))
