"""generate: sample latents from a prior fitted on the student's codes and decode rows."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.logging import get_run_logger

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.config import GenerateConfig
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.stages import decode_rows, fit_latent_prior, sample_rows, transform_table
from fairdistill.tasks.services.caching import STAGE_CACHE
from fairdistill.tasks.services.model_store import load_module, save_arrays_to
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES
from fairdistill.tasks.services.sample_grids import log_sample_grids
from fairdistill.tasks.services.stage_outputs import (
    PreparedData,
    SyntheticData,
    TrainedModel,
    load_teacher,
    load_training_table,
)
from fairdistill.tasks.services.storage import Ref, write_parquet
from fairdistill.tasks.services.tracking import (
    StageContext,
    flatten,
    log_metrics,
    log_params,
    stage_run,
)


@task(name="generate", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def generate(
    settings: GenerateConfig,
    seed: int,
    context: StageContext,
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
) -> SyntheticData:
    logger = get_run_logger()
    with stage_run(context, "generate") as run:
        log_params(flatten("generate", settings))
        table: EncodedTable | None
        codec, table = load_training_table(prepared)
        teacher_model = load_teacher(teacher)
        student_model = load_module(student.weights)
        prior_ref: Ref | None = None
        if settings.mode == "transform":
            encoded = transform_table(student_model, teacher_model, table, codec, seed=seed)
        else:
            fitted = fit_latent_prior(
                student_model,
                table,
                codec,
                settings,
                seed=seed,
                labels_from_features=teacher_model.label_model is not None,
            )
            log_metrics({"prior_log_likelihood": fitted.log_likelihood})
            prior_ref = save_arrays_to(
                context.work_file("prior.safetensors"), fitted.prior.to_arrays(), {"kind": "prior"}
            )
            real_sensitive, rows = table.sensitive, settings.rows or len(table)
            if not isinstance(codec, ImageCodec):
                # Only the image sample grids look at the real rows again. Released, the
                # encoded training features (0.4 GiB at 1M rows of Adult) stay out of
                # decoding's peak memory.
                table = None
            encoded = sample_rows(
                teacher_model, fitted.prior, real_sensitive, codec, settings, rows, seed=seed
            )
        decoded = decode_rows(codec, encoded)
        frame = decoded.frame
        log_metrics(decoded.repair_metrics())
        if isinstance(codec, ImageCodec) and table is not None:
            log_sample_grids(settings, seed, codec, table, encoded, teacher_model, student_model)
        log_metrics(
            {"rows": frame.height, "synthetic_positive_rate": float(np.mean(encoded.label))}
        )
        logger.info("generated %d rows (%s mode)", frame.height, settings.mode)
        for name, count in decoded.repaired.items():
            logger.info("constraint %s: %d rows repaired", name, count)
        return SyntheticData(
            table=write_parquet(context.work_file("synthetic.parquet"), frame),
            prior=prior_ref,
            rows=frame.height,
            repaired=decoded.repaired,
            stage_run_id=run.info.run_id,
        )
