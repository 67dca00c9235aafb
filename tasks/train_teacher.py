"""train_teacher: the fair VAE whose latent is made independent of the sensitive attributes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from prefect import task
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.blocks import EncodedTable, one_hot_sensitive
from fairdistill.models.modality import Codec, build_teacher, codec_from_dict
from fairdistill.models.networks import parameter_count
from fairdistill.models.teacher import encode_latents, probe_sensitive_auroc
from fairdistill.models.teacher import train_teacher as fit_teacher
from fairdistill.models.training import encoder_condition, resolve_device
from fairdistill.tasks import progress
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.model_store import EpochCheckpoint, log_encoder, save_module
from fairdistill.tasks.policy import TRANSIENT_RETRIES
from fairdistill.tasks.prepare import PreparedData
from fairdistill.tasks.storage import Ref, read_json, read_parquet
from fairdistill.tasks.tracking import StageContext, flatten, log_metrics, log_params, stage_run
from fairdistill.tasks.training_record import record_training

EXAMPLE_ROWS = 5


class TrainedModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: Ref
    mlflow_model_uri: str
    parameters: int
    encoder_parameters: int


def load_training_table(prepared: PreparedData) -> tuple[Codec, EncodedTable]:
    codec = codec_from_dict(read_json(prepared.codec))
    return codec, codec.encode(read_parquet(prepared.train))


def serving_example(table: EncodedTable, codec: Codec) -> torch.Tensor:
    rows = slice(0, EXAMPLE_ROWS)
    sensitive = one_hot_sensitive(table.sensitive[rows], codec.sensitive_level_counts)
    condition = encoder_condition(table.label[rows], sensitive)
    return torch.as_tensor(np.concatenate([table.features[rows], condition], axis=1))


def log_latent_fairness(
    encoder: torch.nn.Module, table: EncodedTable, codec: Codec, seed: int
) -> dict[str, float]:
    """How much of each sensitive attribute a probe still reads from the latent."""
    latents = encode_latents(encoder, table, codec.sensitive_level_counts)
    probe = probe_sensitive_auroc(
        latents,
        table.sensitive,
        seed,
        levels=codec.sensitive_level_counts,
        names=codec.sensitive_columns,
    )
    metrics = {f"probe_auroc.{name}": value for name, value in probe.items()}
    log_metrics(metrics)
    return metrics


def epoch_logger(stage: str, epochs: int) -> Callable[[int, dict[str, float]], None]:
    """Each epoch's means go to MLflow, the log and the live display."""
    logger = get_run_logger()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log_metrics(metrics, step=epoch)
        summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        logger.info("%s epoch %d/%d: %s", stage, epoch + 1, epochs, summary)
        progress.epoch_finished(stage, epoch=epoch, epochs=epochs, metrics=metrics)

    return on_epoch


@task(name="train_teacher", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def train_teacher(config: RunConfig, context: StageContext, prepared: PreparedData) -> TrainedModel:
    with stage_run(context, "train_teacher"):
        codec, table = load_training_table(prepared)
        device = resolve_device(config.device)
        log_params({**flatten("teacher", config.teacher), "device": str(device)})
        checkpoint = EpochCheckpoint.for_stage(context, "train_teacher", config, prepared)
        model, history = fit_teacher(
            table,
            codec.blocks,
            codec.sensitive_level_counts,
            config.teacher,
            seed=config.seed,
            device=str(device),
            on_epoch=epoch_logger("train_teacher", config.teacher.epochs),
            on_checkpoint=checkpoint.save,
            start_state=checkpoint.resume(),
            build=lambda: build_teacher(codec, codec.sensitive_level_counts, config.teacher),
        )
        checkpoint.clear()
        model = model.to("cpu")
        log_latent_fairness(model.encoder, table, codec, config.seed)
        record_training(context, "teacher", model.encoder, table, codec, config.seed, history)
        counts = {
            "parameters": parameter_count(model),
            "encoder_parameters": parameter_count(model.encoder),
        }
        log_metrics({key: float(value) for key, value in counts.items()})
        weights = save_module(context, "teacher", model)
        uri = log_encoder("teacher_encoder", model.encoder, serving_example(table, codec))
        return TrainedModel(weights=weights, mlflow_model_uri=uri, **counts)
