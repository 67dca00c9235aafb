"""The tabular decoder's draws: the same rows, bit for bit, as a softmax per block would give."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fairdistill.models.blocks import FeatureBlock
from fairdistill.models.networks import (
    _SOFTMAX_VECTOR_WIDTH,
    TabularDecoder,
    _draw_levels,
    _invert_cdf,
    _shortcut_levels,
)

WIDTHS = [1, 2, 5, 7, 9, 15, 16, 42]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _softmax_levels(logits: Tensor, uniform: Tensor) -> Tensor:
    return _invert_cdf(torch.softmax(logits, dim=1), uniform)


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
def test_shortcut_levels_match_softmax_at_the_cdf_boundaries(width: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(width)
    logits = scale * torch.randn(4_000, width, generator=generator)
    uniform = _uniforms_on_the_boundaries(logits, seed=width)
    expected = _softmax_levels(logits, uniform)
    assert torch.equal(_shortcut_levels(logits, uniform), expected)
    assert torch.equal(_draw_levels(logits, uniform), expected)


def test_shortcut_levels_match_softmax_on_a_strided_slice() -> None:
    # A block is a column slice of the decoder output, not a tensor of its own.
    output = torch.randn(3_000, 30, generator=torch.Generator().manual_seed(1))
    block = output[:, 4:13]
    uniform = _uniforms_on_the_boundaries(block, seed=1)
    assert torch.equal(_shortcut_levels(block, uniform), _softmax_levels(block, uniform))


def test_shortcut_levels_match_softmax_on_infinite_and_extreme_logits() -> None:
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
        assert torch.equal(_shortcut_levels(logits, column), _softmax_levels(logits, column)), (
            uniform
        )


def test_shortcut_levels_of_no_rows() -> None:
    assert _shortcut_levels(torch.zeros(0, 4), torch.zeros(0, 1)).shape == (0, 1)


def _blocks(widths: list[int | None]) -> list[FeatureBlock]:
    """Blocks side by side: a width for a categorical block, None for a continuous one."""
    blocks, start = [], 0
    for index, width in enumerate(widths):
        kind = "continuous" if width is None else "categorical"
        blocks.append(FeatureBlock(f"c{index}", kind, start, width or 1))
        start += width or 1
    return blocks


def _per_block_sample(
    decoder: TabularDecoder, output: dict[str, Tensor], generator: torch.Generator, noise: bool
) -> Tensor:
    """Each block on its own: softmax and a one-hot draw, or mean plus scaled noise."""
    params = output["params"]
    rows = torch.empty_like(params)
    continuous = 0
    for block in decoder.blocks:
        if block.kind == "categorical":
            probs = torch.softmax(params[:, block.start : block.stop], dim=1)
            uniform = torch.rand(len(probs), 1, generator=generator, dtype=probs.dtype)
            # By definition: the first level whose cumulative probability reaches the uniform.
            level = (probs.cumsum(dim=1) < uniform).sum(dim=1, keepdim=True)
            rows[:, block.start : block.stop] = torch.zeros_like(probs).scatter_(
                1, level.clamp_max(probs.shape[1] - 1), 1.0
            )
        else:
            mean = params[:, block.start]
            std = torch.exp(0.5 * output["logvar"][:, continuous])
            if noise:
                mean = mean + std * torch.randn(mean.shape, generator=generator)
            rows[:, block.start] = mean
            continuous += 1
    return rows


MIXED = [None, 7, 2, None, _SOFTMAX_VECTOR_WIDTH - 1, _SOFTMAX_VECTOR_WIDTH, None, 42, 1]


@pytest.mark.parametrize("widths", [MIXED, [None, None], [3, 9]])
@pytest.mark.parametrize("rows", [0, 64, 5_000])
@pytest.mark.parametrize("noise", [True, False])
def test_sample_gives_the_bytes_of_a_per_block_draw(
    widths: list[int | None], rows: int, noise: bool
) -> None:
    torch.manual_seed(0)
    decoder = TabularDecoder(3, 2, [16], _blocks(widths)).eval()
    with torch.no_grad():
        latents = 3.0 * torch.randn(rows, 3)
        sensitive = torch.eye(2)[torch.randint(0, 2, (rows,))]
        output = decoder(latents, sensitive)
        # Sharper logits put many uniforms near a cumulative probability.
        output["params"] = 4.0 * output["params"]
        expected = _per_block_sample(decoder, output, torch.Generator().manual_seed(7), noise)
        drawn = decoder.sample(output, torch.Generator().manual_seed(7), noise=noise)
    assert drawn.shape == (rows, decoder.output_dim)
    assert torch.equal(drawn, expected)
