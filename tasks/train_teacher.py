"""train_teacher: the fair VAE whose latent is made independent of the sensitive attributes."""

from __future__ import annotations

from prefect import task

from fairdistill.models.networks import parameter_count
from fairdistill.models.stages import TrainingHooks, fit_teacher, teacher_epochs
from fairdistill.models.teacher import TeacherConfig
from fairdistill.models.training import resolve_device
from fairdistill.tasks.services.caching import STAGE_CACHE
from fairdistill.tasks.services.epoch_checkpoint import EpochCheckpoint
from fairdistill.tasks.services.model_store import log_encoder, save_module
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES
from fairdistill.tasks.services.stage_outputs import (
    PreparedData,
    TrainedModel,
    load_training_table,
)
from fairdistill.tasks.services.tracking import (
    StageContext,
    flatten,
    log_metrics,
    log_params,
    stage_run,
)
from fairdistill.tasks.services.training_record import (
    epoch_logger,
    log_latent_fairness,
    record_training,
    serving_example,
)


@task(name="train_teacher", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def train_teacher(
    settings: TeacherConfig,
    seed: int,
    device: str,
    context: StageContext,
    prepared: PreparedData,
) -> TrainedModel:
    with stage_run(context, "train_teacher") as run:
        codec, table = load_training_table(prepared)
        placed = resolve_device(device)
        log_params({**flatten("teacher", settings), "device": str(placed)})
        checkpoint = EpochCheckpoint.for_stage(
            context, "train_teacher", settings, seed, device, prepared
        )
        fitted = fit_teacher(
            codec,
            table,
            settings,
            seed=seed,
            device=str(placed),
            hooks=TrainingHooks(
                on_epoch=epoch_logger("train_teacher", teacher_epochs(settings, len(table))),
                on_checkpoint=checkpoint.save,
                start_state=checkpoint.resume(),
            ),
        )
        checkpoint.clear()
        model = fitted.model
        log_latent_fairness(model.encoder, table, codec, seed)
        record_training(context, "teacher", model.encoder, table, codec, seed, fitted.history)
        counts = {
            "parameters": parameter_count(model),
            "encoder_parameters": parameter_count(model.encoder),
        }
        log_metrics({key: float(value) for key, value in counts.items()})
        if model.label_model is not None:
            # Derived from the rows, not set in the config: the record says what labelled.
            log_metrics({"label_drawn_share": float(model.label_model.drawn_share)})
        weights = save_module(context, "teacher", model)
        uri = log_encoder("teacher_encoder", model.encoder, serving_example(table, codec))
        return TrainedModel(
            weights=weights,
            mlflow_model_uri=uri,
            **counts,
            resumed_from_epoch=checkpoint.resumed_from_epoch,
            stage_run_id=run.info.run_id,
        )
