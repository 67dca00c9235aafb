"""The pipeline's recipe as plain functions: typed values in, typed values out.

Each Prefect task in ``tasks/`` wraps one of these with storage and tracking (reading its
inputs from references, logging what it computed, writing what it hands on); the
benchmarks call the same functions without either. Nothing here orchestrates, tracks or
stores: a stage's logic is tested with a frame and an assertion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from torch import Tensor, nn

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.codec import TabularCodec
from fairdistill.models.config import EvaluateConfig, GenerateConfig, PrepareConfig
from fairdistill.models.constraints import breach_metrics, repair_metric, spec_rules
from fairdistill.models.evaluation import EvaluationResult, evaluate_synthetic
from fairdistill.models.evaluation.image import evaluate_images
from fairdistill.models.generation import prior_for_codes, sample_from_prior, transform_rows
from fairdistill.models.modality import Codec, build_teacher, fit_codec
from fairdistill.models.prior import DEFAULT_COMPONENTS, GaussianMixturePrior
from fairdistill.models.spec import DatasetSpec
from fairdistill.models.splitting import split_table
from fairdistill.models.student import (
    RetryCallback,
    StudentConfig,
    distill_student,
    student_schedule,
)
from fairdistill.models.teacher import (
    FairVAE,
    TeacherConfig,
    encode_latents,
    encode_posteriors,
    probe_sensitive_auroc,
    teacher_schedule,
    train_teacher,
)
from fairdistill.models.training import CheckpointCallback, EpochCallback
from fairdistill.models.validation import CheckedTable as CheckedTable
from fairdistill.models.validation import check_table as check_table

# ------------------------------------------------------------------------------ validate

# check_table, the validate step, is defined with the validation checks (imported above):
# the command line runs it without importing the model code.

# ------------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class PreparedTables:
    """The training rows, the held-out test rows (no model sees them) and the codec."""

    train: pl.DataFrame
    test: pl.DataFrame
    codec: Codec


def prepare_tables(
    frame: pl.DataFrame, spec: DatasetSpec, settings: PrepareConfig, *, seed: int
) -> PreparedTables:
    """Split the table (stratified, or the data's own split) and fit the codec on train."""
    train, test = split_table(frame, spec, settings.test_fraction, seed)
    return PreparedTables(train=train, test=test, codec=fit_codec(train, spec))


# ------------------------------------------------------------------------ train, distill


@dataclass(frozen=True)
class TrainingHooks:
    """What a training stage hears and keeps while it fits: epochs, checkpoints, a resume."""

    on_epoch: EpochCallback | None = None
    on_checkpoint: CheckpointCallback | None = None
    start_state: dict[str, Tensor] | None = None
    # Distillation only: told when a student is distilled again (see models/student.py).
    on_retry: RetryCallback | None = None


@dataclass(frozen=True)
class FittedTeacher:
    model: FairVAE
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class FittedStudent:
    encoder: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)


def teacher_epochs(settings: TeacherConfig, rows: int) -> int:
    """Passes the teacher makes over ``rows`` rows (set, or enough for its steps)."""
    return teacher_schedule(settings, rows, seed=0).epochs


def student_epochs(settings: StudentConfig, rows: int) -> int:
    """Passes the distillation makes over ``rows`` rows (set, or enough for its steps)."""
    return student_schedule(settings, rows, seed=0).epochs


def fit_teacher(
    codec: Codec,
    table: EncodedTable,
    settings: TeacherConfig,
    *,
    seed: int,
    device: str = "cpu",
    hooks: TrainingHooks | None = None,
) -> FittedTeacher:
    """The fair VAE for the codec's data type, trained on ``table``; returned on the CPU."""
    hooks = hooks or TrainingHooks()
    levels = codec.sensitive_level_counts
    model, history = train_teacher(
        table,
        codec.blocks,
        levels,
        settings,
        seed=seed,
        device=device,
        on_epoch=hooks.on_epoch,
        on_checkpoint=hooks.on_checkpoint,
        start_state=hooks.start_state,
        build=lambda: build_teacher(codec, levels, settings),
    )
    return FittedTeacher(model=model.to("cpu"), history=history)


def fit_student(
    teacher: FairVAE,
    codec: Codec,
    table: EncodedTable,
    settings: StudentConfig,
    *,
    seed: int,
    device: str = "cpu",
    hooks: TrainingHooks | None = None,
) -> FittedStudent:
    """A small encoder distilled from the frozen ``teacher``; returned on the CPU."""
    hooks = hooks or TrainingHooks()
    encoder, history = distill_student(
        teacher,
        table,
        codec.blocks,
        codec.sensitive_level_counts,
        settings,
        seed=seed,
        device=device,
        on_epoch=hooks.on_epoch,
        on_checkpoint=hooks.on_checkpoint,
        start_state=hooks.start_state,
        on_retry=hooks.on_retry,
    )
    return FittedStudent(encoder=encoder.to("cpu"), history=history)


def probe_latent(encoder: nn.Module, table: EncodedTable, codec: Codec, seed: int) -> dict:
    """How well a probe reads each sensitive attribute from the latent (0.5: not at all)."""
    latents = encode_latents(encoder, table, codec.sensitive_level_counts)  # type: ignore[arg-type]
    return probe_sensitive_auroc(
        latents,
        table.sensitive,
        seed,
        levels=codec.sensitive_level_counts,
        names=codec.sensitive_columns,
    )


# ------------------------------------------------------------------------------ generate


@dataclass(frozen=True)
class FittedPrior:
    prior: GaussianMixturePrior
    log_likelihood: float


def fit_latent_prior(
    encoder: nn.Module,
    table: EncodedTable,
    codec: Codec,
    settings: GenerateConfig,
    *,
    seed: int,
    labels_from_features: bool = True,
) -> FittedPrior:
    """The Gaussian-mixture prior over ``encoder``'s codes of the training rows.

    ``labels_from_features``: the teacher labels rows with its label model (tables by
    default). Then the prior's size grows with the rows and latents are drawn with the
    posteriors' spread, which the decoder was trained on. A label head on the latent reads
    the codes themselves, and it was trained on the means: there a closer fit of the codes
    also reproduces more of their remaining dependence on s, and the posteriors' spread
    confuses the head. On the coloured digits (seed 0) the CNN trained on the rows scored
    AUROC 0.971 and parity ratio 0.849 with the ten-component prior on the means, 0.946 and
    0.760 with the row-scaled one, and 0.76-0.79 and 0.55 with either widened; per-group
    component weights, which give each colour the latents its own images have, left the
    synthetic label parity at 0.24 (without them 0.87). So a label head keeps the
    ten-component prior on the means, one set of weights for every group.
    """
    levels = codec.sensitive_level_counts
    codes, variances = encode_posteriors(encoder, table, levels)  # type: ignore[arg-type]
    if labels_from_features:
        prior = prior_for_codes(
            codes, table.sensitive, levels, settings.prior_components, seed, variances
        )
    else:
        components = settings.prior_components or DEFAULT_COMPONENTS
        prior = GaussianMixturePrior.fit(codes, components, seed)
    return FittedPrior(prior=prior, log_likelihood=prior.log_likelihood(codes))


def sample_rows(
    teacher: FairVAE,
    prior: GaussianMixturePrior,
    real_sensitive: np.ndarray,
    codec: Codec,
    settings: GenerateConfig,
    rows: int,
    *,
    seed: int,
) -> EncodedTable:
    """``rows`` new rows: latents from the prior, sensitive groups in the configured mix."""
    return sample_from_prior(
        teacher,
        prior,
        real_sensitive,
        codec.sensitive_level_counts,
        rows,
        seed=seed,
        mix=settings.sensitive_mix,
    )


def transform_table(
    encoder: nn.Module, teacher: FairVAE, table: EncodedTable, codec: Codec, *, seed: int
) -> EncodedTable:
    """One synthetic row per real row: encoded by ``encoder``, decoded with its own s."""
    return transform_rows(
        encoder,  # type: ignore[arg-type]
        teacher.decoder,
        teacher.labeller(),
        table,
        codec.sensitive_level_counts,
        seed=seed,
        criterion=teacher.criterion,
    )


@dataclass(frozen=True)
class DecodedRows:
    """Generated rows as a table, and how many of them each spec constraint repaired."""

    frame: pl.DataFrame
    repaired: dict[str, int] = field(default_factory=dict)

    def repair_metrics(self) -> dict[str, float]:
        """``constraints.<name>.repaired_rows`` and ``.repaired_share`` per constraint."""
        rows = max(self.frame.height, 1)
        metrics: dict[str, float] = {}
        for name, count in self.repaired.items():
            metrics[f"constraints.{name}.repaired_rows"] = float(count)
            metrics[repair_metric(name)] = count / rows
        return metrics


def decode_rows(codec: Codec, encoded: EncodedTable) -> DecodedRows:
    """Decode generated rows; a table's rows are repaired to obey the spec's constraints."""
    if isinstance(codec, TabularCodec):
        frame, repaired = codec.decode_with_repairs(
            encoded.features, encoded.sensitive, encoded.label
        )
        return DecodedRows(frame, repaired)
    return DecodedRows(codec.decode(encoded.features, encoded.sensitive, encoded.label))


# ------------------------------------------------------------------------------ evaluate


def evaluate_rows(
    train: pl.DataFrame,
    test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    settings: EvaluateConfig,
    *,
    seed: int,
) -> EvaluationResult:
    """Fairness, utility, fidelity and privacy of ``synthetic`` against the held-out rows."""
    if spec.modality == "image":
        # Image classifiers of their own: the tabular families do not apply to pixels.
        return evaluate_images(train, test, synthetic, spec, seed=seed, max_rows=settings.max_rows)
    families: Sequence[str] = settings.families
    result = evaluate_synthetic(
        train,
        test,
        synthetic,
        spec,
        seed=seed,
        families=families,  # type: ignore[arg-type]
        max_rows=settings.max_rows,
    )
    # Repairs guarantee the rules; counted again on the rows as published, for the gate.
    result.metrics.update(breach_metrics(synthetic, spec_rules(spec)))
    return result
