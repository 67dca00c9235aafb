"""Drawing one level per row of a categorical block: exactly the level that a softmax over
the block's logits and the inverse of its cumulative distribution give, only faster.

The tabular decoder draws every categorical column this way; the draws are bit for bit those
of ``invert_cdf(torch.softmax(logits, dim=1), uniform)``, so sampling stays reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor


def invert_cdf(probs: Tensor, uniform: Tensor) -> Tensor:
    """Per row, the first category whose cumulative probability reaches ``uniform``."""
    # The clamp covers a last cumulative sum that rounds below 1. Binary search plus scatter
    # took half the time of counting comparisons and converting a one-hot on a 42-wide block.
    return torch.searchsorted(probs.cumsum(dim=1), uniform).clamp_max_(probs.shape[1] - 1)


# torch.softmax on CPU takes a row narrower than one vector register (16 floats with
# AVX-512, 8 otherwise) element by element, several times slower per value than a wider one.
SOFTMAX_VECTOR_WIDTH = 16 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 8

# How far apart, as a share of the total weight, a row's uniform and every cumulative weight
# computed by shortcut_levels must be for its level to be trusted: 256 times the rounding
# that computing them two ways can accumulate (a few ulps per exp, one per addition), so the
# shortcut and torch.softmax can never order them differently.
CDF_ROUNDING_SLACK = 256 * 2.0**-24


def draw_levels(logits: Tensor, uniform: Tensor) -> Tensor:
    """The level ``invert_cdf(torch.softmax(logits, dim=1), uniform)`` picks, per row."""
    if logits.device.type == "cpu" and logits.shape[1] < SOFTMAX_VECTOR_WIDTH:
        # On Adult's 5- to 15-wide blocks it drew levels 2-3x faster than softmax, which
        # took over half the sampling time; on its 16- and 42-wide blocks it was no faster.
        return shortcut_levels(logits, uniform)
    return invert_cdf(torch.softmax(logits, dim=1), uniform)


def shortcut_levels(logits: Tensor, uniform: Tensor) -> Tensor:
    """Exactly the level softmax gives, from whole-block operations on unnormalised weights.

    The cumulative weights exp(logit - max) of a row, against the uniform times their total,
    give its level; only rows whose uniform lies so close to a cumulative weight that
    rounding could order them differently (3 to 13 in 1,000 on Adult) go through
    torch.softmax. Softmax treats each row on its own, so those rows get exactly the
    probabilities, hence the level, that a softmax over the whole block gives them.
    """
    # One copy of the block: reductions over a narrow strided slice ran up to 5x slower.
    logits = logits.contiguous()
    width = logits.shape[1]
    cumulative = (logits - logits.amax(dim=1, keepdim=True)).exp_().cumsum(dim=1)
    total = cumulative[:, -1:]
    target = uniform * total
    level = torch.searchsorted(cumulative, target)
    # Weights are non-negative, so the nearest cumulative weights on either side of the
    # target are those just below and at the level found.
    below = cumulative.gather(1, (level - 1).clamp_min_(0))
    above = cumulative.gather(1, level.clamp_max(width - 1))
    gap = (width + 16) * CDF_ROUNDING_SLACK * total
    # Written so that a NaN anywhere (an infinite logit) fails the test.
    clear = ((target - below >= gap) | (level == 0)) & (above - target >= gap) & (level < width)
    unclear = torch.nonzero(~clear.squeeze(1)).squeeze(1)
    if len(unclear):
        level[unclear] = invert_cdf(torch.softmax(logits[unclear], dim=1), uniform[unclear])
    return level
