"""The fair VAE teacher: a latent space that keeps the data and forgets the sensitive attributes.

Encoder q(z | x, y, s), decoder p(x | z, s), label head p(y | z) (or p(y | z, s) under
equalized odds). The fairness term, weighted by beta, has two parts:

- the distance correlation (scale invariant, so shrinking z cannot dodge it) between the
  posterior mean and the intersectional sensitive group, over the batch or, under
  equalized odds, within each label stratum. The mean rather than a sample: the mean is
  what the student copies, what the generative prior is fitted on and what transform
  mode decodes, and a sample would let the model hide the dependence under posterior
  noise;
- under demographic parity, the gap between the groups' mean predicted label
  probability. The encoder sees y, so one latent dimension can carry the label, and the
  label's dependence on s with it; among 16 dimensions that one is diluted and the
  distance correlation barely notices (on Adult the synthetic labels stayed about as
  unfair as the real ones). A distance correlation on the head's logit instead made the
  head collapse to noise when the label depends strongly on s; the rate gap does not.

The label head reads the posterior mean, as it does at generation time.

After training, the head's output bias is shifted so that its mean probability on the
training codes equals the real positive rate (``calibrate_label_rate``). The fairness term
pulls the head's rates down more than up: on Adult the synthetic positive rate was 0.17-0.19
against a real 0.24. Since z carries (almost) nothing of s, one shift common to every row
keeps parity; on one Adult seed it raised the downstream classifier's demographic-parity
ratio from 0.74 to 0.79 and its accuracy from 0.790 to 0.807.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from fairdistill.models.blocks import EncodedTable, FeatureBlock, one_hot_sensitive
from fairdistill.models.labeling import (
    FeatureLabelModel,
    LabelModelConfig,
    fit_label_model,
    logit_shift_for_rate,
)
from fairdistill.models.losses import (
    FairnessCriterion,
    fairness_penalty,
    gaussian_kl,
    parity_gap,
)
from fairdistill.models.networks import (
    LabelHead,
    LatentDecoder,
    LatentEncoder,
    MLPEncoder,
    TabularDecoder,
    parameter_count,
)
from fairdistill.models.training import (
    CheckpointCallback,
    EpochCallback,
    LoopSettings,
    TableTensors,
    encoder_condition,
    joint_group_index,
    resolve_device,
    run_training,
    schedule_from,
    seeded_module,
    table_tensors,
)

__all__ = [
    "FairVAE",
    "LabelConditionedEncoder",
    "TeacherConfig",
    "calibrate_label_rate",
    "encode_latents",
    "encode_posteriors",
    "label_head_input",
    "logit_shift_for_rate",
    "parameter_count",
    "probe_sensitive_auroc",
    "train_teacher",
]

# A probe on more rows than this gains no precision worth its seconds.
PROBE_MAX_ROWS = 20_000
# The mean probability of this many rows pins the label rate to about 0.001.
CALIBRATION_MAX_ROWS = 200_000


class TeacherConfig(BaseModel):
    """Hyperparameters of the fair VAE.

    The defaults train a 36,000-row, 107-column table in about 22 s of one CPU core.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latent_dim: int = Field(default=16, ge=1, le=1024)
    hidden: tuple[int, ...] = Field(default=(128, 128), description="Encoder/decoder widths.")
    label_hidden: tuple[int, ...] = Field(default=(64,), description="Label head widths.")
    epochs: int | None = Field(
        default=None, ge=1, description="Passes over the rows; default: enough for ``steps``."
    )
    steps: int = Field(
        default=3000,
        ge=1,
        description="Optimiser steps when epochs is unset (rounded up to whole passes).",
    )
    batch_size: int | None = Field(
        default=None, ge=16, le=2048, description="Rows a step; default: scaled to the rows."
    )
    learning_rate: float = Field(default=2e-3, gt=0.0, le=1.0)
    cosine_decay: bool = Field(
        default=False, description="Decay the learning rate to 0 along a cosine over the run."
    )
    beta: float = Field(default=5.0, ge=0.0, description="Weight of the fairness term.")
    # 0.2 rather than 0.5: on the Adult seed whose student failed at 0.5 (alpha-precision
    # 0.77, coverage 0.73 even with the variance-scaled distillation) it gave 0.97 and
    # 0.85, and on the two other seeds alpha-precision rose by about 0.01 with coverage
    # 0.01 lower. 0.1 raised AUROC but cost alpha-precision and coverage (0.87, 0.77).
    kl_weight: float = Field(default=0.2, ge=0.0)
    label_weight: float = Field(default=1.0, ge=0.0)
    criterion: Literal["demographic_parity", "equalized_odds"] = "demographic_parity"
    calibrate_label_rate: bool = Field(
        default=True,
        description="After training, shift the label head so its mean probability on the "
        "training rows equals the real positive rate.",
    )
    label: LabelModelConfig = Field(
        default_factory=LabelModelConfig,
        description="The model that labels generated rows from their decoded features.",
    )


def label_head_input(z: Tensor, sensitive: Tensor, criterion: FairnessCriterion) -> Tensor:
    """What the label head sees: z alone for parity; z and s under equalized odds."""
    if criterion == "equalized_odds":
        return torch.cat([z, sensitive], dim=1)
    return z


class LabelConditionedEncoder(MLPEncoder):
    """An MLP encoder that takes the usual (label, s) condition but reads only the label.

    The student's alternative to the fairness penalty (``StudentConfig.sensitive_input``
    off): without s among its inputs the student can reach s only through proxies in x.
    On Adult/sex (seed 0) a probe read sex from an s-reading student's latent with AUROC
    0.97 and from this one's with 0.85; with the penalty, 0.54 and 0.61 (teacher: 0.59).
    An encoder that sees s can cancel the shift s puts into the features, one that does not
    has to guess s from them, so the default student reads s and carries the penalty.
    """

    LABEL_COLUMNS = 2

    def __init__(self, in_dim: int, cond_dim: int, hidden: Sequence[int], latent_dim: int):
        super().__init__(in_dim, self.LABEL_COLUMNS, hidden, latent_dim)
        self.condition_dim = cond_dim

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(x, condition[:, : self.LABEL_COLUMNS])


class FairVAE(nn.Module):
    """Encoder, decoder and label head of the teacher, trained together.

    ``label_model``, when present, labels generated rows from their decoded features
    (:mod:`fairdistill.models.labeling`); it is trained after the rest, on the real rows.
    Without it (images, teachers stored before it existed) the label head on the latent
    labels them.
    """

    def __init__(
        self,
        encoder: LatentEncoder,
        decoder: LatentDecoder,
        label_head: LabelHead,
        criterion: FairnessCriterion,
        label_model: FeatureLabelModel | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.label_head = label_head
        self.criterion = criterion
        self.label_model = label_model

    def labeller(self) -> LabelHead | FeatureLabelModel:
        """What labels generated rows: the feature label model if there is one."""
        return self.label_model if self.label_model is not None else self.label_head

    def latent_parameters(self) -> list[nn.Parameter]:
        """The parameters the VAE loss trains (the label model is trained on its own)."""
        skip = set()
        if self.label_model is not None:
            skip = {id(parameter) for parameter in self.label_model.parameters()}
        return [parameter for parameter in self.parameters() if id(parameter) not in skip]

    @classmethod
    def build(
        cls,
        blocks: Sequence[FeatureBlock],
        sensitive_levels: Sequence[int],
        config: TeacherConfig,
    ) -> FairVAE:
        feature_dim = max(block.stop for block in blocks)
        sensitive_dim = sum(sensitive_levels)
        head_dim = config.latent_dim + (
            sensitive_dim if config.criterion == "equalized_odds" else 0
        )
        encoder = MLPEncoder(feature_dim, 2 + sensitive_dim, config.hidden, config.latent_dim)
        decoder = TabularDecoder(config.latent_dim, sensitive_dim, config.hidden, blocks)
        head = LabelHead(head_dim, config.label_hidden)
        # Built last, so the other modules start from the weights they had before it existed.
        label_model = None
        if config.label.enabled:
            continuous = [block.start for block in blocks if block.kind == "continuous"]
            label_model = FeatureLabelModel(
                feature_dim, sensitive_levels, continuous, config.label.hidden, config.label.bins
            )
        return cls(encoder, decoder, head, config.criterion, label_model)

    def losses(
        self,
        x: Tensor,
        condition: Tensor,
        sensitive: Tensor,
        sensitive_joint: Tensor,
        label: Tensor,
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """The unweighted loss terms of one batch."""
        mu, logvar = self.encoder(x, condition)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * noise
        decoded = self.decoder(z, sensitive)
        # Reading samples would let the head exploit a posterior variance that differs
        # between groups, and leave it miscalibrated on the means it reads when generating.
        label_logit = self.label_head(label_head_input(mu, sensitive, self.criterion))
        dcor = fairness_penalty(mu, sensitive_joint, label, self.criterion)
        gap = (
            parity_gap(torch.sigmoid(label_logit), sensitive_joint)
            if self.criterion == "demographic_parity"
            else torch.zeros((), device=x.device)
        )
        return {
            "reconstruction": self.decoder.reconstruction_loss(decoded, x),
            "kl": gaussian_kl(mu, logvar),
            "label": F.binary_cross_entropy_with_logits(label_logit, label),
            "fairness": dcor + gap,
            "dcor": dcor,
            "parity_gap": gap,
            "label_accuracy": ((label_logit > 0).float() == label).float().mean(),
        }

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "encoder": self.encoder.architecture(),
            "decoder": self.decoder.architecture(),
            "label_head": self.label_head.architecture(),
            "criterion": self.criterion,
            "label_model": None if self.label_model is None else self.label_model.architecture(),
        }

    @classmethod
    def from_architecture(
        cls,
        architecture: Mapping[str, Any],
        *,
        build_part: Callable[[Mapping[str, Any]], nn.Module],
    ) -> FairVAE:
        """An untrained teacher whose parts ``build_part`` rebuilds from their architectures.

        The parts may be of any kind, so the caller passes the builder that knows them all
        (:func:`~fairdistill.models.architectures.build_from_architecture`, which imports
        this module).
        """
        label_model = architecture.get("label_model")
        return cls(
            build_part(architecture["encoder"]),  # type: ignore[arg-type]
            build_part(architecture["decoder"]),  # type: ignore[arg-type]
            build_part(architecture["label_head"]),  # type: ignore[arg-type]
            architecture["criterion"],
            None if label_model is None else build_part(label_model),  # type: ignore[arg-type]
        )


def train_teacher(
    table: EncodedTable,
    blocks: list[FeatureBlock],
    sensitive_levels: list[int],
    config: TeacherConfig,
    *,
    seed: int,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    start_state: dict[str, Tensor] | None = None,
    build: Callable[[], FairVAE] | None = None,
) -> tuple[FairVAE, list[dict[str, float]]]:
    """Train the fair VAE on ``table``; return it (eval mode) and its per-epoch metrics.

    ``build`` makes the untrained model (default: the tabular MLP pair of ``blocks``); see
    :func:`fairdistill.models.modality.build_teacher` for the other data types.

    History keys: loss, reconstruction, kl, label, fairness (the term beta weighs) with
    its parts dcor and parity_gap, label_accuracy, epoch_seconds.
    ``on_checkpoint(epoch, tensors)`` receives a
    :class:`~fairdistill.models.training.TrainingState` as tensors after each epoch;
    passing those tensors back as ``start_state`` resumes to identical weights.
    """
    target = resolve_device(device)
    build = build or (lambda: FairVAE.build(blocks, sensitive_levels, config))
    model = seeded_module(build, seed).to(target)
    data = table_tensors(table, sensitive_levels, target)

    def step(rows: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        terms = _batch_terms(model, data, rows, generator)
        terms["loss"] = (
            terms["reconstruction"]
            + config.kl_weight * terms["kl"]
            + config.label_weight * terms["label"]
            + config.beta * terms["fairness"]
        )
        return terms

    settings = teacher_schedule(config, len(table), seed)
    history = run_training(
        model,
        model.latent_parameters(),
        step,
        n_rows=len(table),
        settings=settings,
        device=target,
        on_epoch=on_epoch,
        on_checkpoint=on_checkpoint,
        start_state=start_state,
    )
    if config.calibrate_label_rate:
        calibrate_label_rate(model, table, sensitive_levels, seed=seed)
    if model.label_model is not None:
        fit_label_model(
            model.label_model, table, config.label, config.criterion, seed=seed, device=target
        )
        model.eval()
    return model, history


# Teacher batches: at least 64 rows, since the distance-correlation estimate needs them
# (at 32 the student's penalty stopped holding); 256 at Adult's size, as before.
TEACHER_BATCH_BOUNDS = (64, 256)


def teacher_schedule(config: TeacherConfig, rows: int, seed: int) -> LoopSettings:
    """Epochs and batch size of the teacher's training on ``rows`` rows."""
    return schedule_from(config, rows, TEACHER_BATCH_BOUNDS, seed)


def calibrate_label_rate(
    model: FairVAE, table: EncodedTable, sensitive_levels: Sequence[int], *, seed: int
) -> float:
    """Shift ``model``'s label head so its mean probability on ``table`` is the label rate.

    The head reads posterior means, as at generation time; tables larger than
    ``CALIBRATION_MAX_ROWS`` are subsampled with ``seed``. Returns the logit shift applied.
    """
    if len(table) > CALIBRATION_MAX_ROWS:
        rows = np.sort(
            np.random.default_rng(seed).choice(len(table), CALIBRATION_MAX_ROWS, replace=False)
        )
        table = EncodedTable(table.features[rows], table.sensitive[rows], table.label[rows])
    device = next(model.parameters()).device
    codes = torch.as_tensor(encode_latents(model, table, sensitive_levels), device=device)
    sensitive = torch.as_tensor(
        one_hot_sensitive(table.sensitive, list(sensitive_levels)), device=device
    )
    with torch.no_grad():
        logits = model.label_head(label_head_input(codes, sensitive, model.criterion))
    offset = logit_shift_for_rate(logits, float(np.mean(table.label)))
    model.label_head.shift_logit(offset)
    return offset


def _batch_terms(
    model: FairVAE, data: TableTensors, rows: Tensor, generator: torch.Generator
) -> dict[str, Tensor]:
    return model.losses(
        data.features[rows],
        data.condition[rows],
        data.sensitive[rows],
        data.sensitive_joint[rows],
        data.label[rows],
        generator,
    )


def encode_latents(
    model_or_encoder: FairVAE | LatentEncoder,
    table: EncodedTable,
    sensitive_levels: Sequence[int],
    *,
    batch_size: int = 65_536,
) -> np.ndarray:
    """Posterior means of every row of ``table`` (float32, (n, latent_dim)).

    Runs on the device the encoder lives on, in batches, without gradients.
    """
    means, _ = encode_posteriors(model_or_encoder, table, sensitive_levels, batch_size=batch_size)
    return means


@torch.no_grad()
def encode_posteriors(
    model_or_encoder: FairVAE | LatentEncoder,
    table: EncodedTable,
    sensitive_levels: Sequence[int],
    *,
    batch_size: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and variances of every row of ``table`` (float32, (n, latent_dim)
    each), in batches on the encoder's device, without gradients."""
    encoder = (
        model_or_encoder.encoder if isinstance(model_or_encoder, FairVAE) else model_or_encoder
    )
    encoder.eval()  # type: ignore[union-attr]
    target = next(encoder.parameters()).device  # type: ignore[union-attr]
    sensitive = one_hot_sensitive(table.sensitive, list(sensitive_levels))
    condition = encoder_condition(table.label, sensitive)
    means, variances = [], []
    for start in range(0, len(table), batch_size):
        x = torch.as_tensor(table.features[start : start + batch_size], device=target)
        c = torch.as_tensor(condition[start : start + batch_size], device=target)
        mu, logvar = encoder(x.float(), c)
        means.append(mu.cpu().numpy())
        variances.append(torch.exp(logvar).cpu().numpy())
    if not means:
        empty = np.zeros((0, encoder.latent_dim), dtype=np.float32)
        return empty, empty.copy()
    return np.concatenate(means).astype(np.float32), np.concatenate(variances).astype(np.float32)


def probe_sensitive_auroc(
    latents: np.ndarray,
    sensitive: np.ndarray,
    seed: int,
    *,
    levels: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    test_fraction: float = 0.3,
) -> dict[str, float]:
    """Held-out AUROC of a logistic probe predicting each sensitive attribute from z.

    0.5 means the probe finds nothing of the attribute in z; 1.0 means z gives it away.
    With several attributes, ``intersection`` probes the joint group as well (pass
    ``levels`` to name the groups consistently). Multi-level targets use the one-vs-rest
    macro AUROC; an attribute with a single level present yields NaN.
    """
    rng = np.random.default_rng(seed)
    if len(latents) > PROBE_MAX_ROWS:
        keep = np.sort(rng.choice(len(latents), PROBE_MAX_ROWS, replace=False))
        latents, sensitive = latents[keep], sensitive[keep]
    names = (
        list(names) if names is not None else [f"attribute_{i}" for i in range(sensitive.shape[1])]
    )
    targets = {name: sensitive[:, column] for column, name in enumerate(names)}
    if sensitive.shape[1] > 1:
        counts = list(levels) if levels is not None else list(sensitive.max(axis=0) + 1)
        targets["intersection"] = joint_group_index(sensitive, counts)
    return {
        name: _probe_auroc(latents, target, seed, test_fraction) for name, target in targets.items()
    }


def _probe_auroc(latents: np.ndarray, target: np.ndarray, seed: int, test_fraction: float) -> float:
    classes, counts = np.unique(target, return_counts=True)
    if len(classes) < 2:
        return float("nan")
    # Stratify only when every class can appear on both sides of the split.
    stratify = target if counts.min() >= 2 else None
    train_x, test_x, train_y, test_y = train_test_split(
        latents, target, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    if len(np.unique(train_y)) < 2 or len(np.unique(test_y)) < 2:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(train_x, train_y)
    known = np.isin(test_y, probe.classes_)
    test_x, test_y = test_x[known], test_y[known]
    scores = probe.predict_proba(test_x)
    if scores.shape[1] == 2:
        return float(roc_auc_score(test_y, scores[:, 1]))
    # Classes absent from the held-out rows cannot be scored one-vs-rest.
    present = np.isin(probe.classes_, test_y)
    scores = scores[:, present] / scores[:, present].sum(axis=1, keepdims=True)
    if present.sum() == 2:
        return float(roc_auc_score(test_y == probe.classes_[present][1], scores[:, 1]))
    return float(roc_auc_score(test_y, scores, multi_class="ovr", labels=probe.classes_[present]))
