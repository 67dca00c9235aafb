"""Losses of the fair VAE and of its distillation: dependence, divergence, reconstruction.

Every function is differentiable and stays finite on degenerate batches (constant columns,
repeated rows, a single sensitive group), because a NaN gradient from one odd batch would
poison a whole training run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from fairdistill.models.blocks import FeatureBlock

FairnessCriterion = Literal["demographic_parity", "equalized_odds"]

# Added inside square roots so that zero distances and zero variances keep finite gradients.
_SQRT_EPS = 1e-12
# A label stratum smaller than this gives a dependence estimate too noisy to steer training.
MIN_STRATUM_ROWS = 8


def _distances(x: Tensor) -> Tensor:
    """Euclidean distance matrix of the rows of ``x`` (n, p)."""
    x = x.reshape(x.shape[0], -1)
    if not x.requires_grad:
        return torch.cdist(x, x)
    squared_norms = (x * x).sum(dim=1)
    # The Gram form needs O(n^2) memory instead of O(n^2 p) for explicit differences.
    squared = torch.addmm(squared_norms[:, None] + squared_norms[None, :], x, x.T, alpha=-2.0)
    # The floor keeps sqrt's gradient finite at zero distances (repeated rows, the diagonal).
    return torch.sqrt(squared.clamp_min(_SQRT_EPS))


def _double_centred(distances: Tensor) -> Tensor:
    row_means = distances.mean(dim=1, keepdim=True)
    return distances - row_means - row_means.T + distances.mean()


def _distance_variance(distances: Tensor) -> Tensor:
    """mean(A * A) for the double-centred A of a symmetric matrix, without building A."""
    row_means = distances.mean(dim=1)
    return (
        (distances * distances).mean()
        - 2.0 * (row_means * row_means).mean()
        + (distances.mean() ** 2)
    )


def _moments(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """dCov^2(x, y), dVar^2(x), dVar^2(y); only y's distances are centred explicitly."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same rows, got {x.shape[0]} and {y.shape[0]}")
    x_distances = _distances(x)
    y_centred = _double_centred(_distances(y))
    # Centring one side suffices: sum(A * B) == sum(a * B) when B is double-centred.
    covariance = (x_distances * y_centred).mean()
    return covariance, _distance_variance(x_distances), (y_centred * y_centred).mean()


def distance_covariance_sq(x: Tensor, y: Tensor) -> Tensor:
    """Squared sample distance covariance (V-statistic) of paired rows of ``x`` and ``y``.

    Zero in the population exactly when ``x`` and ``y`` are independent; the V-statistic is
    non-negative with a small positive bias (of order 1/n) under independence.
    """
    return _moments(x, y)[0]


def distance_correlation(x: Tensor, y: Tensor) -> Tensor:
    """Sample distance correlation of ``x`` and ``y``, in [0, 1] and scale invariant.

    A constant ``x`` or ``y`` carries no information about the other, so it yields 0.
    Put the tensor that needs gradients first: only the second is centred explicitly.
    """
    covariance, x_variance, y_variance = _moments(x, y)
    squared = covariance / torch.sqrt(x_variance.clamp_min(0.0) * y_variance + _SQRT_EPS)
    return torch.sqrt(squared.clamp(0.0, 1.0) + _SQRT_EPS) - math.sqrt(_SQRT_EPS)


def parity_gap(probability: Tensor, groups: Tensor) -> Tensor:
    """Size-weighted standard deviation of the mean predicted probability across groups.

    ``groups`` is a one-hot (n, g) matrix; 0 means every group gets the positive label at
    the same rate (demographic parity). Empty groups are ignored.
    """
    sizes = groups.sum(dim=0)
    present = sizes > 0
    rates = (groups * probability[:, None]).sum(dim=0)[present] / sizes[present]
    weights = sizes[present] / sizes[present].sum()
    overall = (weights * rates).sum()
    return torch.sqrt((weights * (rates - overall) ** 2).sum() + _SQRT_EPS) - math.sqrt(_SQRT_EPS)


def fairness_penalty(
    latent: Tensor,
    sensitive: Tensor,
    label: Tensor,
    criterion: FairnessCriterion,
) -> Tensor:
    """Distance correlation between the latent and the sensitive attributes.

    ``demographic_parity`` asks for independence over the whole batch; ``equalized_odds``
    for independence within each label stratum (the mean over strata large enough to
    estimate it).
    """
    if criterion == "demographic_parity":
        return distance_correlation(latent, sensitive)
    terms = [
        distance_correlation(latent[label == value], sensitive[label == value])
        for value in torch.unique(label).tolist()
        if int((label == value).sum()) >= MIN_STRATUM_ROWS
    ]
    if not terms:
        return latent.sum() * 0.0
    return torch.stack(terms).mean()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dimensions, mean over rows."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def gaussian_pair_kl(mu_p: Tensor, logvar_p: Tensor, mu_q: Tensor, logvar_q: Tensor) -> Tensor:
    """KL(N(mu_p, var_p) || N(mu_q, var_q)) elementwise (diagonal Gaussians)."""
    return 0.5 * (
        logvar_q - logvar_p + (logvar_p.exp() + (mu_p - mu_q).pow(2)) / logvar_q.exp() - 1.0
    )


def bernoulli_kl(logit_p: Tensor, logit_q: Tensor) -> Tensor:
    """KL(Bernoulli(sigmoid(logit_p)) || Bernoulli(sigmoid(logit_q))), mean over rows."""
    p = torch.sigmoid(logit_p)
    kl = p * (F.logsigmoid(logit_p) - F.logsigmoid(logit_q)) + (1.0 - p) * (
        F.logsigmoid(-logit_p) - F.logsigmoid(-logit_q)
    )
    return kl.mean()


@dataclass(frozen=True)
class BlockLayout:
    """Column indices that let all blocks of one kind be scored in one tensor operation.

    Categorical blocks of equal width are stacked: ``categorical[w]`` is an (m, w) index
    matrix into the feature columns; ``continuous`` indexes every one-column block.
    """

    categorical: tuple[Tensor, ...]
    continuous: Tensor


@lru_cache(maxsize=64)
def _layout_cached(blocks: tuple[FeatureBlock, ...], device: str) -> BlockLayout:
    by_width: dict[int, list[list[int]]] = {}
    for block in blocks:
        if block.kind == "categorical":
            by_width.setdefault(block.width, []).append(list(range(block.start, block.stop)))
    categorical = tuple(
        torch.tensor(columns, dtype=torch.long, device=device)
        for _, columns in sorted(by_width.items())
    )
    continuous = torch.tensor(
        [block.start for block in blocks if block.kind == "continuous"],
        dtype=torch.long,
        device=device,
    )
    return BlockLayout(categorical=categorical, continuous=continuous)


def block_layout(blocks: Sequence[FeatureBlock], device: torch.device | str) -> BlockLayout:
    """The cached :class:`BlockLayout` of ``blocks`` with its indices on ``device``."""
    return _layout_cached(tuple(blocks), str(device))


def _split_decoded(decoded: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None]:
    if isinstance(decoded, Tensor):
        return decoded, None
    return decoded["params"], decoded.get("logvar")


def reconstruction_loss(
    decoded: Tensor | Mapping[str, Tensor],
    target: Tensor,
    blocks: Sequence[FeatureBlock],
) -> Tensor:
    """Negative log-likelihood of ``target`` under the decoded blocks, summed over blocks.

    ``decoded`` is either a tensor of per-column parameters (logits for categorical blocks,
    means for continuous ones, unit variance) or a mapping with ``params`` and ``logvar``
    (one log-variance per continuous block, in block order). Gaussian terms omit the
    constant 0.5*log(2*pi). Mean over rows.
    """
    params, logvar = _split_decoded(decoded)
    layout = block_layout(blocks, params.device)
    total = params.new_zeros(params.shape[0])
    for columns in layout.categorical:
        log_probs = F.log_softmax(params[:, columns], dim=-1)
        total = total - (target[:, columns] * log_probs).sum(dim=(1, 2))
    if layout.continuous.numel():
        mean = params[:, layout.continuous]
        error = (target[:, layout.continuous] - mean).pow(2)
        if logvar is None:
            total = total + 0.5 * error.sum(dim=1)
        else:
            total = total + 0.5 * (logvar + error * torch.exp(-logvar)).sum(dim=1)
    return total.mean()


def decoded_divergence(
    reference: Tensor | Mapping[str, Tensor],
    other: Tensor | Mapping[str, Tensor],
    blocks: Sequence[FeatureBlock],
) -> Tensor:
    """KL(reference || other) between two decoded distributions, summed over blocks."""
    ref_params, ref_logvar = _split_decoded(reference)
    other_params, other_logvar = _split_decoded(other)
    layout = block_layout(blocks, ref_params.device)
    total = ref_params.new_zeros(ref_params.shape[0])
    for columns in layout.categorical:
        ref_log = F.log_softmax(ref_params[:, columns], dim=-1)
        other_log = F.log_softmax(other_params[:, columns], dim=-1)
        total = total + (ref_log.exp() * (ref_log - other_log)).sum(dim=(1, 2))
    if layout.continuous.numel():
        zeros = ref_params.new_zeros(ref_params.shape[0], layout.continuous.numel())
        kl = gaussian_pair_kl(
            ref_params[:, layout.continuous],
            zeros if ref_logvar is None else ref_logvar,
            other_params[:, layout.continuous],
            zeros if other_logvar is None else other_logvar,
        )
        total = total + kl.sum(dim=1)
    return total.mean()
