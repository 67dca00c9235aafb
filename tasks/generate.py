"""generate: sample latents from a prior fitted on the student's codes and decode rows."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.blocks import EncodedTable
from fairdistill.models.generation import (
    sample_from_prior,
    transform_rows,
)
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.modality import Codec
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.teacher import FairVAE, encode_latents
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.distill_student import load_teacher
from fairdistill.tasks.image_samples import log_sample_grids
from fairdistill.tasks.model_store import load_module, save_arrays_to
from fairdistill.tasks.policy import TRANSIENT_RETRIES
from fairdistill.tasks.prepare import PreparedData
from fairdistill.tasks.storage import Ref, write_parquet
from fairdistill.tasks.tracking import StageContext, flatten, log_metrics, log_params, stage_run
from fairdistill.tasks.train_teacher import TrainedModel, load_training_table


class SyntheticData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table: Ref
    prior: Ref | None
    rows: int


def fit_prior(
    config: RunConfig,
    context: StageContext,
    student: object,
    table: EncodedTable,
    codec: Codec,
) -> tuple[GaussianMixturePrior, Ref]:
    """The latent prior fitted on the student's codes of the training rows, stored."""
    codes = encode_latents(student, table, codec.sensitive_level_counts)  # type: ignore[arg-type]
    prior = GaussianMixturePrior.fit(codes, config.generate.prior_components, config.seed)
    log_metrics({"prior_log_likelihood": prior.log_likelihood(codes)})
    arrays = prior.to_arrays()
    return prior, save_arrays_to(context.work_file("prior.safetensors"), arrays, {"kind": "prior"})


def sample_rows(
    config: RunConfig,
    teacher: FairVAE,
    prior: GaussianMixturePrior,
    real_sensitive: np.ndarray,
    codec: Codec,
    rows: int,
) -> EncodedTable:
    """``rows`` new rows: latents from the prior, sensitive groups in the configured mix."""
    return sample_from_prior(
        teacher,
        prior,
        real_sensitive,
        codec.sensitive_level_counts,
        rows,
        seed=config.seed,
        mix=config.generate.sensitive_mix,
    )


@task(name="generate", tags=["gpu"], **STAGE_CACHE, **TRANSIENT_RETRIES)
def generate(
    config: RunConfig,
    context: StageContext,
    prepared: PreparedData,
    teacher: TrainedModel,
    student: TrainedModel,
) -> SyntheticData:
    logger = get_run_logger()
    with stage_run(context, "generate"):
        log_params(flatten("generate", config.generate))
        table: EncodedTable | None
        codec, table = load_training_table(prepared)
        teacher_model = load_teacher(teacher)
        student_model = load_module(student.weights)
        prior_ref: Ref | None = None
        if config.generate.mode == "transform":
            encoded = transform_rows(
                student_model,
                teacher_model.decoder,
                teacher_model.label_head,
                table,  # type: ignore[arg-type]
                codec.sensitive_level_counts,
                seed=config.seed,
                criterion=teacher_model.criterion,
            )
        else:
            prior, prior_ref = fit_prior(config, context, student_model, table, codec)
            real_sensitive, rows = table.sensitive, config.generate.rows or len(table)
            if not isinstance(codec, ImageCodec):
                # Only the image sample grids look at the real rows again. Released, the
                # encoded training features (0.4 GiB at 1M rows of Adult) stay out of
                # decoding's peak memory.
                table = None
            encoded = sample_rows(config, teacher_model, prior, real_sensitive, codec, rows)
        frame = codec.decode(encoded.features, encoded.sensitive, encoded.label)
        if isinstance(codec, ImageCodec) and table is not None:
            log_sample_grids(config, codec, table, encoded, teacher_model, student_model)
        log_metrics(
            {"rows": frame.height, "synthetic_positive_rate": float(np.mean(encoded.label))}
        )
        logger.info("generated %d rows (%s mode)", frame.height, config.generate.mode)
        return SyntheticData(
            table=write_parquet(context.work_file("synthetic.parquet"), frame),
            prior=prior_ref,
            rows=frame.height,
        )
