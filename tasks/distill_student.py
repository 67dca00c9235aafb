"""distill_student: a small encoder that reproduces the frozen teacher's fair latent."""

from __future__ import annotations

from prefect import task

from fairdistill.models.networks import parameter_count
from fairdistill.models.stages import TrainingHooks, fit_student, student_epochs
from fairdistill.models.student import StudentConfig
from fairdistill.models.training import resolve_device
from fairdistill.tasks.services.caching import STAGE_CACHE
from fairdistill.tasks.services.epoch_checkpoint import EpochCheckpoint
from fairdistill.tasks.services.model_store import log_encoder, save_module
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES
from fairdistill.tasks.services.stage_outputs import (
    PreparedData,
    TrainedModel,
    load_teacher,
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
    RetryLog,
    epoch_logger,
    log_latent_fairness,
    record_training,
    serving_example,
)


@task(name="distill_student", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def distill_student(
    settings: StudentConfig,
    seed: int,
    device: str,
    context: StageContext,
    prepared: PreparedData,
    teacher: TrainedModel,
) -> TrainedModel:
    with stage_run(context, "distill_student") as run:
        codec, table = load_training_table(prepared)
        placed = resolve_device(device)
        log_params({**flatten("student", settings), "device": str(placed)})
        teacher_model = load_teacher(teacher, str(placed))
        checkpoint = EpochCheckpoint.for_stage(
            context, "distill_student", settings, seed, device, prepared, teacher
        )
        retries = RetryLog("distill_student")
        fitted = fit_student(
            teacher_model,
            codec,
            table,
            settings,
            seed=seed,
            device=str(placed),
            hooks=TrainingHooks(
                on_epoch=epoch_logger("distill_student", student_epochs(settings, len(table))),
                on_checkpoint=checkpoint.save,
                start_state=checkpoint.resume(),
                on_retry=retries,
            ),
        )
        checkpoint.clear()
        student = fitted.encoder
        log_latent_fairness(student, table, codec, seed)
        record_training(context, "student", student, table, codec, seed, fitted.history)
        parameters = parameter_count(student)
        log_metrics(
            {
                "parameters": float(parameters),
                "teacher_encoder_parameters": float(teacher.encoder_parameters),
                "size_ratio": parameters / teacher.encoder_parameters,
                "distillation_attempts": float(retries.attempts),
            }
        )
        weights = save_module(context, "student", student)
        uri = log_encoder("student_encoder", student, serving_example(table, codec))
        return TrainedModel(
            weights=weights,
            mlflow_model_uri=uri,
            parameters=parameters,
            encoder_parameters=parameters,
            resumed_from_epoch=checkpoint.resumed_from_epoch,
            stage_run_id=run.info.run_id,
        )
