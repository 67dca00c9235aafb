"""generate: sample latents from a prior fitted on the student's codes and decode rows."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.blocks import EncodedTable
from fairdistill.models.checkpoint import save_arrays
from fairdistill.models.generation import decode_latents, sample_sensitive, transform_rows
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.modality import Codec
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.teacher import FairVAE, encode_latents
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.distill_student import load_teacher
from fairdistill.tasks.image_samples import log_sample_grids
from fairdistill.tasks.model_store import load_module
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


def sample_from_prior(
    config: RunConfig,
    context: StageContext,
    teacher: FairVAE,
    student: object,
    table: EncodedTable,
    codec: Codec,
) -> tuple[EncodedTable, Ref]:
    levels = codec.sensitive_level_counts
    codes = encode_latents(student, table, levels)  # type: ignore[arg-type]
    prior = GaussianMixturePrior.fit(codes, config.generate.prior_components, config.seed)
    log_metrics({"prior_log_likelihood": prior.log_likelihood(codes)})
    path = context.work_file("prior.safetensors")
    prior_ref = Ref(uri=path, sha256=save_arrays(path, prior.to_arrays(), {"kind": "prior"}))
    rows = config.generate.rows or len(table)
    z = prior.sample(rows, seed=config.seed)
    sensitive = sample_sensitive(
        rows, table.sensitive, seed=config.seed, mix=config.generate.sensitive_mix
    )
    features, label = decode_latents(
        teacher.decoder,
        teacher.label_head,
        z,
        sensitive,
        levels,
        seed=config.seed,
        criterion=teacher.criterion,
    )
    return EncodedTable(features=features, sensitive=sensitive, label=label), prior_ref


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
            encoded, prior_ref = sample_from_prior(
                config, context, teacher_model, student_model, table, codec
            )
        frame = codec.decode(encoded.features, encoded.sensitive, encoded.label)
        if isinstance(codec, ImageCodec):
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
