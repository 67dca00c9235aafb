"""The tabular decoder's draws: the same rows, bit for bit, as a softmax per block would give."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fairdistill.models.blocks import FeatureBlock
from fairdistill.models.categorical_draws import SOFTMAX_VECTOR_WIDTH
from fairdistill.models.networks import TabularDecoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


MIXED = [None, 7, 2, None, SOFTMAX_VECTOR_WIDTH - 1, SOFTMAX_VECTOR_WIDTH, None, 42, 1]


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
