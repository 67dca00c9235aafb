"""distill_student: a small encoder that reproduces the frozen teacher's fair latent."""

from __future__ import annotations

from prefect import task

from fairdistill.flows.config import RunConfig
from fairdistill.models.networks import parameter_count
from fairdistill.models.student import distill_student as fit_student
from fairdistill.models.teacher import FairVAE
from fairdistill.models.training import resolve_device
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.model_store import (
    EpochCheckpoint,
    load_module,
    log_encoder,
    save_module,
)
from fairdistill.tasks.policy import TRANSIENT_RETRIES
from fairdistill.tasks.prepare import PreparedData
from fairdistill.tasks.tracking import StageContext, flatten, log_metrics, log_params, stage_run
from fairdistill.tasks.train_teacher import (
    TrainedModel,
    epoch_logger,
    load_training_table,
    log_latent_fairness,
    serving_example,
)
from fairdistill.tasks.training_record import record_training


def load_teacher(teacher: TrainedModel, device: str = "cpu") -> FairVAE:
    model = load_module(teacher.weights, device)
    assert isinstance(model, FairVAE), f"{teacher.weights.uri} does not hold a teacher"
    return model


@task(name="distill_student", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def distill_student(
    config: RunConfig, context: StageContext, prepared: PreparedData, teacher: TrainedModel
) -> TrainedModel:
    with stage_run(context, "distill_student"):
        codec, table = load_training_table(prepared)
        device = resolve_device(config.device)
        log_params({**flatten("student", config.student), "device": str(device)})
        teacher_model = load_teacher(teacher, str(device))
        checkpoint = EpochCheckpoint.for_stage(
            context, "distill_student", config, prepared, teacher
        )
        student, history = fit_student(
            teacher_model,
            table,
            codec.blocks,
            codec.sensitive_level_counts,
            config.student,
            seed=config.seed,
            device=str(device),
            on_epoch=epoch_logger("distill_student", config.student.epochs),
            on_checkpoint=checkpoint.save,
            start_state=checkpoint.resume(),
        )
        checkpoint.clear()
        student = student.to("cpu")
        log_latent_fairness(student, table, codec, config.seed)
        record_training(context, "student", student, table, codec, config.seed, history)
        parameters = parameter_count(student)
        log_metrics(
            {
                "parameters": float(parameters),
                "teacher_encoder_parameters": float(teacher.encoder_parameters),
                "size_ratio": parameters / teacher.encoder_parameters,
            }
        )
        weights = save_module(context, "student", student)
        uri = log_encoder("student_encoder", student, serving_example(table, codec))
        return TrainedModel(
            weights=weights,
            mlflow_model_uri=uri,
            parameters=parameters,
            encoder_parameters=parameters,
        )
