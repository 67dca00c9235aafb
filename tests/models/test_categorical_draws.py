"""Categorical draws: the shortcut picks the softmax level bit for bit, boundaries included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from fairdistill.models.categorical_draws import draw_levels, invert_cdf, shortcut_levels

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDTHS = [1, 2, 5, 7, 9, 15, 16, 42]


def _softmax_levels(logits: Tensor, uniform: Tensor) -> Tensor:
    return invert_cdf(torch.softmax(logits, dim=1), uniform)


def _uniforms_on_the_boundaries(logits: Tensor, seed: int) -> Tensor:
    """Per row: exactly at a cumulative softmax probability, one float either side, or random.

    These are the uniforms whose level a rounding difference would change.
    """
    generator = torch.Generator().manual_seed(seed)
    n, width = logits.shape
    cdf = torch.softmax(logits, dim=1).cumsum(dim=1)
    boundary = cdf.gather(1, torch.randint(0, width, (n, 1), generator=generator))
    boundary = boundary.clamp(0.0, 1.0 - 2.0**-24)
    choice = torch.randint(0, 4, (n, 1), generator=generator)
    return torch.where(
        choice == 0,
        boundary,
        torch.where(
            choice == 1,
            torch.nextafter(boundary, torch.zeros(())),
            torch.where(
                choice == 2,
                torch.nextafter(boundary, torch.ones(())),
                torch.rand(n, 1, generator=generator),
            ),
        ),
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scale", [0.3, 4.0, 40.0])
def testshortcut_levels_match_softmax_at_the_cdf_boundaries(width: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(width)
    logits = scale * torch.randn(4_000, width, generator=generator)
    uniform = _uniforms_on_the_boundaries(logits, seed=width)
    expected = _softmax_levels(logits, uniform)
    assert torch.equal(shortcut_levels(logits, uniform), expected)
    assert torch.equal(draw_levels(logits, uniform), expected)


def testshortcut_levels_match_softmax_on_a_strided_slice() -> None:
    # A block is a column slice of the decoder output, not a tensor of its own.
    output = torch.randn(3_000, 30, generator=torch.Generator().manual_seed(1))
    block = output[:, 4:13]
    uniform = _uniforms_on_the_boundaries(block, seed=1)
    assert torch.equal(shortcut_levels(block, uniform), _softmax_levels(block, uniform))


def testshortcut_levels_match_softmax_on_infinite_and_extreme_logits() -> None:
    inf, nan = float("inf"), float("nan")
    logits = torch.tensor(
        [
            [inf, 0.0, 1.0],
            [-inf, 0.0, 1.0],
            [-inf, -inf, 0.0],
            [nan, 0.0, 1.0],
            [-1e30, -1e30, -1e30],
            [1e30, 1e30, 0.0],
            [-200.0, -150.0, -100.0],
            [80.0, 80.0, 80.0],
        ]
    )
    for uniform in (0.0, 0.2, 0.5, 0.9, 1.0 - 2.0**-24):
        column = torch.full((len(logits), 1), uniform)
        assert torch.equal(shortcut_levels(logits, column), _softmax_levels(logits, column)), (
            uniform
        )


def testshortcut_levels_of_no_rows() -> None:
    assert shortcut_levels(torch.zeros(0, 4), torch.zeros(0, 1)).shape == (0, 1)


def test_one_hot_draw_picks_the_first_category_whose_cdf_reaches_the_uniform() -> None:
    probs = torch.softmax(torch.randn(2_000, 7, generator=torch.Generator().manual_seed(0)), 1)
    uniform = torch.rand(len(probs), 1, generator=torch.Generator().manual_seed(5))
    # A row whose probabilities sum to 0.9 (rounding, at a smaller scale) and whose uniform
    # lies above that still gets a level: the last one.
    short = int(torch.nonzero(uniform[:, 0] > 0.9)[0])
    probs[short] = torch.tensor([0.3, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0])
    drawn = torch.zeros_like(probs).scatter_(1, invert_cdf(probs, uniform), 1.0)
    expected = (probs.cumsum(dim=1) < uniform).sum(dim=1).clamp_max(6)
    assert drawn.dtype == probs.dtype
    np.testing.assert_array_equal(drawn.sum(dim=1).numpy(), 1.0)
    np.testing.assert_array_equal(drawn.argmax(dim=1).numpy(), expected.numpy())
    assert drawn[short, 6] == 1.0
