"""The pipeline's stages as plain function calls: the baseline that orchestration adds to.

Each section does the work its task does (the same library calls, the same parquet and
JSON writes, the latent probe and latent sample of the training stages) and leaves out
only what Prefect and MLflow add: task and flow runs, run records, artifacts, model logging.
Publishing is left out on both sides of the comparison's stage sums (it is not a model
step); the whole-process wall times include it on the pipeline side only.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks.speed_common import Clock
from fairdistill.data import bundled_dataset
from fairdistill.flows.config import RunConfig
from fairdistill.flows.settings import load_settings
from fairdistill.models.blocks import EncodedTable
from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.generation import sample_from_prior
from fairdistill.models.modality import build_teacher, fit_codec
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.splitting import stratified_split
from fairdistill.models.student import StudentConfig, distill_student
from fairdistill.models.tables import read_table
from fairdistill.models.teacher import (
    TeacherConfig,
    encode_latents,
    probe_sensitive_auroc,
    train_teacher,
)
from fairdistill.tasks.storage import parquet_bytes
from fairdistill.tasks.tracking import stage_threads
from fairdistill.tasks.training_record import latent_sample
from fairdistill.tasks.validation_suite import validate_frame


def run_plain_stages(
    clock: Clock,
    *,
    epochs: int | None = None,
    student_epochs: int | None = None,
    rows: int | None = None,
    threads: int | None = None,
) -> None:
    """Run validate … evaluate on Adult with the run defaults, timing each in ``clock``.

    ``threads`` (default: the pipeline's setting) caps torch, BLAS and OpenMP as each
    pipeline stage does, so both sides of the comparison compute with the same threads.
    """
    threads = threads or load_settings().torch_threads
    config = RunConfig(dataset="adult")
    teacher_config = config.teacher.model_copy(update={"epochs": epochs or config.teacher.epochs})
    student_config = config.student.model_copy(
        update={"epochs": student_epochs or config.student.epochs}
    )
    with (
        tempfile.TemporaryDirectory(prefix="fairdistill-plain-work-") as folder,
        stage_threads(threads),
    ):
        _run_stages(clock, config, teacher_config, student_config, rows, Path(folder))


def _run_stages(
    clock: Clock,
    config: RunConfig,
    teacher_config: TeacherConfig,
    student_config: StudentConfig,
    rows: int | None,
    work: Path,
) -> None:
    seed = config.seed
    with clock.section("validate"):
        bundled = bundled_dataset("adult")
        frame = read_table(bundled.data_path)
        spec = complete_spec(load_spec(bundled.spec_path), frame, source=str(bundled.data_path))
        validate_frame(frame, spec, source=str(bundled.data_path))
        (work / "input.parquet").write_bytes(parquet_bytes(frame))
    with clock.section("prepare"):
        strata = [spec.target.column, *spec.sensitive_columns]
        train, test = stratified_split(frame, strata, config.prepare.test_fraction, seed)
        codec = fit_codec(train, spec)
        (work / "train.parquet").write_bytes(parquet_bytes(train))
        (work / "test.parquet").write_bytes(parquet_bytes(test))
        (work / "codec.json").write_text(json.dumps(codec.to_dict()))
    levels = codec.sensitive_level_counts
    with clock.section("train_teacher"):
        table = codec.encode(train)
        teacher, _ = train_teacher(
            table,
            codec.blocks,
            levels,
            teacher_config,
            seed=seed,
            device=config.device,
            build=lambda: build_teacher(codec, levels, teacher_config),
        )
        probe(teacher.encoder, table, levels, seed)
        latent_sample(teacher.encoder, table, codec, seed)
    with clock.section("distill_student"):
        table = codec.encode(train)
        student, _ = distill_student(
            teacher, table, codec.blocks, levels, student_config, seed=seed, device=config.device
        )
        probe(student, table, levels, seed)
        latent_sample(student, table, codec, seed)
    with clock.section("generate"):
        table = codec.encode(train)
        codes = encode_latents(student, table, levels)
        prior = GaussianMixturePrior.fit(codes, config.generate.prior_components, seed)
        prior.log_likelihood(codes)
        count = rows or len(table)
        sampled = sample_from_prior(teacher, prior, table.sensitive, levels, count, seed=seed)
        synthetic = codec.decode(sampled.features, sampled.sensitive, sampled.label)
        (work / "synthetic.parquet").write_bytes(parquet_bytes(synthetic))
    with clock.section("evaluate"):
        evaluate_synthetic(
            train,
            test,
            synthetic,
            spec,
            seed=seed,
            families=config.evaluate.families,
            max_rows=config.evaluate.max_rows,
        )


def probe(encoder: object, table: EncodedTable, levels: list[int], seed: int) -> None:
    latents = encode_latents(encoder, table, levels)  # type: ignore[arg-type]
    probe_sensitive_auroc(latents, table.sensitive, seed, levels=levels)
