"""The label of a generated row: a clean, fair function of the row's own features.

The teacher's latent is pushed away from the sensitive attributes, so a label decoded from
it is a weak and noisy function of the features decoded beside it: on Adult a classifier
trained on such rows scored AUROC 0.854 and F1 0.52 on real test rows, and one trained and
tested on them (TSTS) scored lower still. The generator labels each row instead with a
model of the label trained on the real training rows, reading the row's decoded features
and sensitive attributes, and thresholded per sensitive group:

- demographic parity: each group's threshold is the one at which that group's real
  training rows are labelled positive at the overall real positive rate;
- equalized odds: the thresholds (one per group, after Hardt et al. 2016, without their
  randomisation, which a classifier trained on the rows would average away) are chosen on
  the real training rows so that the true- and false-positive rates agree across groups to
  within ``eo_min_ratio``, keeping the most accurate such choice.

A threshold rather than a draw for every row: a label that is a deterministic function of
the features is one a downstream classifier can learn (on Adult, labels drawn for every row
gave AUROC 0.867 / 0.836 at temperatures 0.5 / 1 against 0.875 thresholded). Except at a
tie: when the features take few values (a table of a few categorical columns) many rows
share the logit at which a group's rate is reached, and a threshold can only label all of
them or none. On a four-column loan table that labelled 70 % of every group positive
against a real 52 %, and a classifier trained on such rows scored AUROC 0.56-0.59 on real
rows against 0.59-0.66 for real labels. So rows whose logit ties with the threshold are
positive with the share that gives the group its rate (Hardt et al.'s randomised
threshold, used only where a plain one cannot reach the rate): 0.57-0.62, the rate 0.51
and demographic parity ratios 0.95-0.99 on the same splits. The thresholds and tie shares
live in the model's buffers, so everything a stored teacher needs to label rows travels
with its weights, and generation stays batch-wise and deterministic.

Mostly a hard threshold, but on large tables a share of the rows draw their label. A
label that is a step function of the features tells a classifier where the boundary is
and nothing about how far a row lies from it, and it leaves out the real rows whose label
goes against their neighbours' (the generated rows near them all carry the other label).
So a share of the generated rows (``drawn_share``; by default 0.3 from 20,000 training
rows, less in proportion on smaller tables, and none under equalized odds) is labelled by a
draw from the model's probability, shifted per group (``draw_offsets``) so that the drawn
labels keep each group's thresholded rate. The draws are below a half of the rows, so the
most likely label of every row, and with it the boundary a classifier learns, stays the
threshold's. Measured on seeds 0-2 (product rows, share 0 → 0.3): `adult_plain` AUROC
0.867 → 0.873, coverage 0.872 → 0.893, demographic-parity ratio 0.900 → 0.909; Adult/sex
seeds 0-1 AUROC 0.878 → 0.883, coverage 0.891 → 0.901; COMPAS at 0.1 coverage 0.776 →
0.844, AUROC 0.720 → 0.716. On German credit (800 rows) the draws cost AUROC (0.785 →
0.769 at 0.15, 0.779 at 0.1): a classifier needs many rows to average label noise out,
hence the ramp with the rows. Under equalized odds the draws lowered the equalized-odds
ratio (Adult/sex seeds 0-1, 0.830 → 0.794 at 0.3).

Continuous columns arrive as normal scores; the model also reads them through a
piecewise-linear encoding (Gorishniy et al. 2022) with ``bins`` bins whose edges are
quantiles of the column's distinct training values, which lets a small MLP draw the
thresholds a tree would. Distinct values rather than rows: capital gains are 0 in 92 % of
Adult's rows, and bins at row quantiles spent all but one on that zero. On Adult without
``fnlwgt`` the label model's test AUROC went 0.904 -> 0.919 (seeds 0; 0.912 -> 0.922 on
seed 1), and a classifier trained on real rows relabelled by it 0.854 -> 0.870 (0.867 ->
0.878), level with relabelling by out-of-fold gradient boosting (0.867, 0.877).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.losses import FairnessCriterion
from fairdistill.models.networks import mlp
from fairdistill.models.training import (
    LoopSettings,
    TableTensors,
    joint_group_index,
    run_training,
    table_tensors,
)

# Keeps the label model's shuffling apart from the teacher's for the same seed.
_LABEL_SEED_OFFSET = 104_729
# Candidate thresholds per group and target rates per axis of the equalized-odds search.
_EO_CANDIDATES = 256
_EO_TARGETS = 64
# Keeps log-ratios finite at a rate of zero.
_RATE_FLOOR = 1e-6
# Equalized odds: every group must keep at least this true-positive rate. Rates agree
# trivially near "nobody positive"; on Adult a ratio target of 0.93 otherwise chose
# thresholds that labelled 4 % of the rows positive (real rate 24 %).
_MIN_TRUE_POSITIVE_RATE = 0.5
# Logits closer than this to a group's threshold count as tied with it: identical rows give
# identical logits up to the rounding of batched matrix products.
TIE_TOLERANCE = 1e-4
# The default share of drawn labels, reached at FULL_DRAWN_SHARE_ROWS training rows.
DRAWN_SHARE = 0.3
FULL_DRAWN_SHARE_ROWS = 20_000
# Bounds of the bisection for a logit shift: beyond +-20 every probability is 0 or 1.
_MAX_LOGIT_SHIFT = 20.0
_BISECTION_STEPS = 60
# Lower edge of an unused bin (a column with fewer distinct values than bins): far above
# any normal score, so the bin always encodes 0.
_UNUSED_EDGE = 1e4


class LabelModelConfig(BaseModel):
    """How the generator's label model is trained and calibrated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Label generated rows from their decoded features (off: from the latent, "
        "through the teacher's label head).",
    )
    hidden: tuple[int, ...] = Field(default=(64,), description="Label model widths.")
    bins: int = Field(
        default=32, ge=0, le=256, description="Piecewise-linear bins per continuous column."
    )
    # Passes over the data, not steps: the label model overfits by passes. German credit
    # (800 rows, batch 32): 20 passes gave relabelled AUROC 0.79-0.80, 100 passes 0.73-0.75.
    epochs: int = Field(default=20, ge=1)
    max_steps: int = Field(
        default=6000, ge=1, description="Cap on optimiser steps, which large tables reach first."
    )
    learning_rate: float = Field(default=2e-3, gt=0.0, le=1.0)
    drawn_share: float | None = Field(
        default=None,
        ge=0.0,
        lt=0.5,
        description="Share of generated rows whose label is drawn from the label model's "
        "probability (shifted per group to keep the group's thresholded rate) instead of "
        f"thresholded; default: {DRAWN_SHARE} from {FULL_DRAWN_SHARE_ROWS:,} training rows, "
        "in proportion below, 0 under equalized odds.",
    )
    eo_min_ratio: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="Equalized odds: smallest true- and false-positive-rate ratio between "
        "groups on the real training rows that the thresholds must reach.",
    )


class FeatureLabelModel(nn.Module):
    """logit(y = 1 | x, s) from encoded features and sensitive one-hots; per-group thresholds.

    ``thresholds`` holds one logit threshold per intersectional group (mixed-radix index of
    the sensitive levels, see :func:`fairdistill.models.training.joint_group_index`): a row
    is labelled positive when its logit reaches its group's threshold; ``tie_shares`` (1
    unless the training logits tie at the threshold) is the chance that a row whose logit
    ties with the threshold is labelled positive.
    """

    def __init__(
        self,
        feature_dim: int,
        sensitive_levels: Sequence[int],
        continuous_columns: Sequence[int],
        hidden: Sequence[int],
        bins: int,
    ):
        super().__init__()
        self.feature_dim = feature_dim
        self.sensitive_levels = tuple(int(count) for count in sensitive_levels)
        self.continuous_columns = tuple(int(column) for column in continuous_columns)
        self.hidden = tuple(int(size) for size in hidden)
        self.bins = bins
        self.register_buffer("continuous", torch.tensor(self.continuous_columns, dtype=torch.long))
        width = (len(self.continuous_columns), bins)
        self.register_buffer("bin_lower", torch.full(width, _UNUSED_EDGE))
        self.register_buffer("bin_width", torch.ones(width))
        self.register_buffer("thresholds", torch.zeros(math.prod(self.sensitive_levels)))
        self.register_buffer("tie_shares", torch.ones(math.prod(self.sensitive_levels)))
        self.register_buffer("drawn_share", torch.zeros(()))
        self.register_buffer("draw_offsets", torch.zeros(math.prod(self.sensitive_levels)))
        in_dim = feature_dim + sum(self.sensitive_levels) + bins * len(self.continuous_columns)
        self.net = mlp(in_dim, self.hidden, 1)

    def forward(self, features: Tensor, sensitive: Tensor) -> Tensor:
        """Logits (n,) of encoded ``features`` (n, d) with the sensitive one-hots (n, Σ levels)."""
        parts = [features, sensitive]
        if self.bins and self.continuous_columns:
            values = features[:, self.continuous, None]
            encoded = ((values - self.bin_lower) / self.bin_width).clamp(0.0, 1.0)
            parts.append(encoded.flatten(1))
        return self.net(torch.cat(parts, dim=1)).squeeze(1)

    def _load_from_state_dict(  # type: ignore[no-untyped-def]
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        # A model stored before labels were drawn has neither buffer: it thresholds every
        # row, as it did when it was stored.
        for name in ("drawn_share", "draw_offsets"):
            state_dict.setdefault(prefix + name, torch.zeros_like(getattr(self, name)))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    @torch.no_grad()
    def fit_bins(self, features: Tensor) -> None:
        """Bin edges of every continuous column from the distinct values in ``features``."""
        for position, column in enumerate(self.continuous_columns):
            distinct = torch.unique(features[:, column]).double().cpu().numpy()
            edges = np.unique(np.quantile(distinct, np.linspace(0.0, 1.0, self.bins + 1)))
            used = len(edges) - 1
            self.bin_lower[position].fill_(_UNUSED_EDGE)
            self.bin_width[position].fill_(1.0)
            if used >= 1:
                lower = torch.as_tensor(edges[:-1], dtype=self.bin_lower.dtype)
                self.bin_lower[position, :used] = lower
                self.bin_width[position, :used] = torch.as_tensor(np.diff(edges)).clamp_min(1e-6)

    @torch.no_grad()
    def decide(
        self,
        features: Tensor,
        sensitive: Tensor,
        groups: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Labels (int64 (n,)): 1 where the logit reaches the threshold of the row's group;
        a row tied with a threshold whose tie share is below 1 is positive with that share
        (drawn from ``generator``, only when the batch holds such a row). With a
        ``drawn_share`` above 0, that share of the rows (picked at random) is instead
        positive with probability sigmoid(logit - threshold + draw offset of the group)."""
        logits = self(features, sensitive)
        thresholds = self.thresholds[groups]
        labels = logits >= thresholds
        shares = self.tie_shares[groups]
        tied = ((logits - thresholds).abs() <= TIE_TOLERANCE) & (shares < 1.0)
        if bool(tied.any()):
            uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
            labels = torch.where(tied, uniform < shares, labels)
        drawn_share = float(self.drawn_share)
        if drawn_share > 0.0:
            picked = torch.rand(logits.shape, generator=generator, device=logits.device)
            uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
            chance = torch.sigmoid(logits - thresholds + self.draw_offsets[groups])
            labels = torch.where(picked < drawn_share, uniform < chance, labels)
        return labels.long()

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "feature_dim": self.feature_dim,
            "sensitive_levels": list(self.sensitive_levels),
            "continuous_columns": list(self.continuous_columns),
            "hidden": list(self.hidden),
            "bins": self.bins,
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> FeatureLabelModel:
        return cls(
            architecture["feature_dim"],
            architecture["sensitive_levels"],
            architecture["continuous_columns"],
            architecture["hidden"],
            architecture["bins"],
        )


def label_batch_size(rows: int) -> int:
    """About 25 steps a pass, between 32 and 256 rows: German credit (800 rows) at batch 256
    took 3 steps a pass and its label model stayed near chance on two of three splits."""
    return int(min(256, max(32, 2 ** round(math.log2(max(rows, 1) / 25)))))


def fit_label_model(
    model: FeatureLabelModel,
    table: EncodedTable,
    config: LabelModelConfig,
    criterion: FairnessCriterion,
    *,
    seed: int,
    device: torch.device,
) -> list[dict[str, float]]:
    """Train ``model`` on the real rows of ``table``, then set its group thresholds.

    Returns the per-pass history (loss, accuracy, epoch_seconds).
    """
    data = table_tensors(table, list(model.sensitive_levels), device)
    model.fit_bins(data.features)
    batch = label_batch_size(len(table))
    steps_per_pass = max(1, len(table) // batch)
    passes = max(1, min(config.epochs, config.max_steps // steps_per_pass))

    def step(rows: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        del generator  # nothing is sampled
        logit = model(data.features[rows], data.sensitive[rows])
        label = data.label[rows]
        return {
            "loss": F.binary_cross_entropy_with_logits(logit, label),
            "accuracy": ((logit >= 0).float() == label).float().mean(),
        }

    settings = LoopSettings(passes, batch, config.learning_rate, seed + _LABEL_SEED_OFFSET)
    history = run_training(
        model, list(model.parameters()), step, n_rows=len(table), settings=settings, device=device
    )
    calibrate_thresholds(model, data, table, criterion, config.eo_min_ratio)
    model.drawn_share.fill_(drawn_label_share(len(table), criterion, config.drawn_share))
    return history


def drawn_label_share(rows: int, criterion: FairnessCriterion, configured: float | None) -> float:
    """The share of generated rows that draw their label (see the module notes): the
    configured one, else ``DRAWN_SHARE`` scaled down on tables below
    ``FULL_DRAWN_SHARE_ROWS`` rows, and none under equalized odds."""
    if configured is not None:
        return configured
    if criterion == "equalized_odds":
        return 0.0
    return DRAWN_SHARE * min(1.0, rows / FULL_DRAWN_SHARE_ROWS)


@torch.no_grad()
def calibrate_thresholds(
    model: FeatureLabelModel,
    data: TableTensors,
    table: EncodedTable,
    criterion: FairnessCriterion,
    eo_min_ratio: float,
) -> None:
    """Set ``model.thresholds`` from its logits on the real rows (see the module notes)."""
    model.eval()
    logits = torch.cat(
        [
            model(data.features[start : start + 65_536], data.sensitive[start : start + 65_536])
            for start in range(0, len(data), 65_536)
        ]
    )
    logits_np = logits.cpu().numpy().astype(np.float64)
    groups = joint_group_index(table.sensitive, model.sensitive_levels)
    count = model.thresholds.numel()
    shares = np.ones(count)
    if criterion == "equalized_odds":
        thresholds = equalized_odds_thresholds(logits_np, table.label, groups, count, eo_min_ratio)
    else:
        thresholds, shares = parity_cuts(logits_np, float(np.mean(table.label)), groups, count)
    model.thresholds.copy_(torch.as_tensor(thresholds, dtype=model.thresholds.dtype))
    model.tie_shares.copy_(torch.as_tensor(shares, dtype=model.tie_shares.dtype))
    offsets = draw_offsets(logits_np, groups, thresholds, shares)
    model.draw_offsets.copy_(torch.as_tensor(offsets, dtype=model.draw_offsets.dtype))


def draw_offsets(
    logits: np.ndarray, groups: np.ndarray, thresholds: np.ndarray, shares: np.ndarray
) -> np.ndarray:
    """Per group, the shift at which sigmoid(logit - threshold + shift) has, on average over
    the group's rows, the group's thresholded positive rate (0 for groups without rows)."""
    offsets = np.zeros(len(thresholds))
    for group in np.unique(groups):
        margins = logits[groups == group] - thresholds[group]
        tied = np.abs(margins) <= TIE_TOLERANCE
        positive = np.where(tied, shares[group], (margins >= 0).astype(np.float64))
        offsets[group] = logit_shift_for_rate(torch.as_tensor(margins), float(positive.mean()))
    return offsets


def logit_shift_for_rate(logits: Tensor, rate: float) -> float:
    """The shift ``c`` with mean(sigmoid(logits + c)) == ``rate``, within +-20 (bisection)."""
    low, high = -_MAX_LOGIT_SHIFT, _MAX_LOGIT_SHIFT
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if float(torch.sigmoid(logits + middle).mean()) < rate:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def rate_threshold(logits: np.ndarray, rate: float) -> float:
    """A threshold at which exactly ``round(rate * n)`` of ``logits`` are at or above it.

    The midpoint between the last logit in and the first one out, so neither rounding nor
    a tiny shift of the logits at generation time moves a training row across it.
    """
    ordered = np.sort(logits)[::-1]
    chosen = round(rate * len(ordered))
    if chosen <= 0:
        return float(ordered[0] + 1.0)
    if chosen >= len(ordered):
        return float(ordered[-1] - 1.0)
    return float(0.5 * (ordered[chosen - 1] + ordered[chosen]))


def rate_cut(logits: np.ndarray, rate: float) -> tuple[float, float]:
    """A threshold and tie share that label ``round(rate * n)`` of ``logits`` positive.

    Without a tie at the cut, :func:`rate_threshold` and share 1. When the logits just in
    and just out tie (within ``TIE_TOLERANCE``), the tied logit is the threshold and the
    share is the part of the tied rows the rate still needs.
    """
    ordered = np.sort(logits)[::-1]
    chosen = round(rate * len(ordered))
    if chosen <= 0 or chosen >= len(ordered):
        return rate_threshold(logits, rate), 1.0
    level = float(ordered[chosen - 1])
    if abs(float(ordered[chosen]) - level) > TIE_TOLERANCE:
        return rate_threshold(logits, rate), 1.0
    tied = int(np.sum(np.abs(ordered - level) <= TIE_TOLERANCE))
    above = int(np.sum(ordered > level + TIE_TOLERANCE))
    return level, (chosen - above) / tied


def parity_cuts(
    logits: np.ndarray, rate: float, groups: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the threshold and tie share at which its rows are positive at ``rate``;
    groups without rows get the cut of all rows together."""
    overall = rate_cut(logits, rate)
    thresholds, shares = np.full(count, overall[0]), np.full(count, overall[1])
    for group in np.unique(groups):
        thresholds[group], shares[group] = rate_cut(logits[groups == group], rate)
    return thresholds, shares


def parity_thresholds(
    logits: np.ndarray, rate: float, groups: np.ndarray, count: int
) -> np.ndarray:
    """Per group, the threshold at which its rows are positive at ``rate`` (ties all in);
    groups without rows get the threshold of all rows together."""
    thresholds = np.full(count, rate_threshold(logits, rate))
    for group in np.unique(groups):
        thresholds[group] = rate_threshold(logits[groups == group], rate)
    return thresholds


def equalized_odds_thresholds(
    logits: np.ndarray, label: np.ndarray, groups: np.ndarray, count: int, min_ratio: float
) -> np.ndarray:
    """Per-group thresholds whose true- and false-positive rates agree across the groups.

    Each group offers ``_EO_CANDIDATES`` thresholds (quantiles of its logits). For each
    target (TPR, FPR) on a grid, every group takes the candidate nearest to it in the larger
    of the two log-ratios; among the targets whose choices reach ``min_ratio`` on both rate
    ratios the most accurate wins, else the one with the largest smaller ratio.
    """
    present = [group for group in np.unique(groups) if _has_both_labels(label[groups == group])]
    thresholds = np.full(count, rate_threshold(logits, float(np.mean(label))))
    if len(present) < 2:
        return parity_thresholds(logits, float(np.mean(label)), groups, count)
    curves = [_roc_candidates(logits[groups == g], label[groups == g]) for g in present]
    tpr_targets = _grid(np.concatenate([curve[1] for curve in curves]))
    fpr_targets = _grid(np.concatenate([curve[2] for curve in curves]))
    choices = [_nearest(curve, tpr_targets, fpr_targets) for curve in curves]
    tpr = np.stack([curve[1][choice] for curve, choice in zip(curves, choices, strict=True)])
    fpr = np.stack([curve[2][choice] for curve, choice in zip(curves, choices, strict=True)])
    correct = sum(curve[3][choice] for curve, choice in zip(curves, choices, strict=True))
    ratio = np.minimum(_ratio(tpr), _ratio(fpr))
    ratio = np.where(tpr.min(axis=0) >= _MIN_TRUE_POSITIVE_RATE, ratio, 0.0)
    feasible = ratio >= min_ratio
    score = np.where(feasible, correct, -np.inf) if feasible.any() else ratio
    best = np.unravel_index(int(np.argmax(score)), score.shape)
    for group, curve, choice in zip(present, curves, choices, strict=True):
        thresholds[group] = curve[0][choice[best]]
    return thresholds


def _has_both_labels(label: np.ndarray) -> bool:
    return bool(label.min() == 0 and label.max() == 1) if len(label) else False


def _roc_candidates(
    logits: np.ndarray, label: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds with their TPR, FPR and count of correctly labelled rows."""
    thresholds = np.unique(np.quantile(logits, np.linspace(0.0, 1.0, _EO_CANDIDATES)))
    positive = logits[None, :] >= thresholds[:, None]
    true_pos = (positive & (label[None, :] == 1)).sum(axis=1)
    false_pos = (positive & (label[None, :] == 0)).sum(axis=1)
    positives, negatives = int(label.sum()), int(len(label) - label.sum())
    correct = true_pos + (negatives - false_pos)
    return thresholds, true_pos / positives, false_pos / negatives, correct


def _grid(rates: np.ndarray) -> np.ndarray:
    return np.unique(np.quantile(rates, np.linspace(0.0, 1.0, _EO_TARGETS)))


def _nearest(
    curve: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tpr_targets: np.ndarray,
    fpr_targets: np.ndarray,
) -> np.ndarray:
    """Index of the candidate nearest to each (TPR, FPR) target: shape (tpr, fpr)."""
    log_tpr = np.log(np.maximum(curve[1], _RATE_FLOOR))
    log_fpr = np.log(np.maximum(curve[2], _RATE_FLOOR))
    tpr_gap = np.abs(log_tpr[None, :] - np.log(np.maximum(tpr_targets, _RATE_FLOOR))[:, None])
    fpr_gap = np.abs(log_fpr[None, :] - np.log(np.maximum(fpr_targets, _RATE_FLOOR))[:, None])
    distance = np.maximum(tpr_gap[:, None, :], fpr_gap[None, :, :])
    return np.argmin(distance, axis=2)


def _ratio(rates: np.ndarray) -> np.ndarray:
    """Smallest over largest rate across groups (axis 0); 1 where every rate is zero."""
    largest = rates.max(axis=0)
    return np.where(largest > 0, rates.min(axis=0) / np.maximum(largest, _RATE_FLOOR), 1.0)
