"""The encoder/decoder interface every modality implements, and its tabular MLP pair.

The teacher loss, the distillation and generation only speak to :class:`LatentEncoder` and
:class:`LatentDecoder`, so a convolutional pair for images plugs into the same machinery.
Every module describes itself with ``architecture()`` (JSON-safe constructor arguments), so
its weights can be stored as safetensors with that JSON as metadata, never pickled, and
rebuilt with :func:`~fairdistill.models.architectures.module_from_state`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fairdistill.models.blocks import FeatureBlock
from fairdistill.models.categorical_draws import draw_levels
from fairdistill.models.losses import decoded_divergence, reconstruction_loss

DecoderOutput = dict[str, Tensor]

# exp(-5) ~ 0.007: a continuous column may be predicted almost exactly from z, but a
# variance that collapses to zero would blow the likelihood (and its gradient) up.
LOGVAR_FLOOR = -5.0
# Continuous columns arrive as normal scores, so a standard deviation above e ~ 2.7 is
# never right; without a ceiling, latents drawn far from the training codes decoded to
# values in the thousands.
LOGVAR_CEILING = 2.0
# Encoder log-variances outside this range only arise from diverging training; clamping
# keeps exp() finite instead of letting one bad batch produce inf.
LATENT_LOGVAR_RANGE = (-12.0, 8.0)


@runtime_checkable
class LatentEncoder(Protocol):
    """q(z | x, condition): returns the posterior mean and log-variance."""

    latent_dim: int
    condition_dim: int

    def __call__(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]: ...

    def architecture(self) -> dict[str, Any]: ...


@runtime_checkable
class LatentDecoder(Protocol):
    """p(x | z, s): decodes latents into per-row distribution parameters."""

    latent_dim: int
    sensitive_dim: int
    output_dim: int  # columns of the encoded rows it produces

    def __call__(self, z: Tensor, sensitive: Tensor) -> DecoderOutput: ...

    def reconstruction_loss(self, output: DecoderOutput, x: Tensor) -> Tensor:
        """Negative log-likelihood of encoded rows ``x``, mean over rows."""
        ...

    def divergence(self, reference: DecoderOutput, other: DecoderOutput) -> Tensor:
        """KL(reference || other) between two decoded distributions, mean over rows."""
        ...

    def sample(
        self, output: DecoderOutput, generator: torch.Generator, *, noise: bool = True
    ) -> Tensor:
        """Rows in encoded space drawn from ``output``.

        Discrete parts are always drawn; ``noise=False`` returns the mean of continuous
        parts instead of adding the decoded observation noise.
        """
        ...

    def architecture(self) -> dict[str, Any]: ...


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.SiLU()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Gaussian posterior q(z | x, condition) from a multilayer perceptron."""

    def __init__(self, in_dim: int, cond_dim: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.condition_dim = cond_dim
        self.hidden = tuple(int(size) for size in hidden)
        self.latent_dim = latent_dim
        self.net = mlp(in_dim + cond_dim, self.hidden, 2 * latent_dim)

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(torch.cat([x, condition], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LATENT_LOGVAR_RANGE)

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "in_dim": self.in_dim,
            "cond_dim": self.condition_dim,
            "hidden": list(self.hidden),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> MLPEncoder:
        return cls(
            architecture["in_dim"],
            architecture["cond_dim"],
            architecture["hidden"],
            architecture["latent_dim"],
        )


def _check_blocks(blocks: Sequence[FeatureBlock]) -> int:
    position = 0
    for block in blocks:
        if block.start != position or block.width < 1:
            raise ValueError(f"feature blocks must tile the columns in order; see {block}")
        if block.kind == "continuous" and block.width != 1:
            raise ValueError(f"a continuous block has width 1; see {block}")
        position = block.stop
    return position


class TabularDecoder(nn.Module):
    """p(x | z, s) for a table: logits per categorical block, a Gaussian per continuous one.

    The variance of each continuous column is learned per row: decoding the mean alone
    would shrink every continuous marginal to a smooth function of z, while a fixed unit
    variance would blur columns that z predicts well.
    """

    def __init__(
        self,
        latent_dim: int,
        s_dim: int,
        hidden: Sequence[int],
        blocks: Sequence[FeatureBlock],
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.sensitive_dim = s_dim
        self.hidden = tuple(int(size) for size in hidden)
        self.blocks = tuple(blocks)
        self.output_dim = _check_blocks(self.blocks)
        self.continuous_count = sum(block.kind == "continuous" for block in self.blocks)
        self.categorical_count = len(self.blocks) - self.continuous_count
        self.net = mlp(latent_dim + s_dim, self.hidden, self.output_dim + self.continuous_count)

    def forward(self, z: Tensor, sensitive: Tensor) -> DecoderOutput:
        raw = self.net(torch.cat([z, sensitive], dim=1))
        params, raw_logvar = raw.split([self.output_dim, self.continuous_count], dim=1)
        # A soft floor keeps gradients alive where a hard clamp would cut them.
        logvar = (LOGVAR_FLOOR + F.softplus(raw_logvar - LOGVAR_FLOOR)).clamp_max(LOGVAR_CEILING)
        return {"params": params, "logvar": logvar}

    def reconstruction_loss(self, output: DecoderOutput, x: Tensor) -> Tensor:
        return reconstruction_loss(output, x, self.blocks)

    def divergence(self, reference: DecoderOutput, other: DecoderOutput) -> Tensor:
        return decoded_divergence(reference, other, self.blocks)

    def sample(
        self, output: DecoderOutput, generator: torch.Generator, *, noise: bool = True
    ) -> Tensor:
        params = output["params"]
        # Zeros everywhere, so a categorical block only needs its drawn level set to one;
        # all levels are set by one scatter at the end instead of a one-hot copy per block.
        rows = torch.zeros_like(params)
        levels = torch.empty(
            len(params), self.categorical_count, dtype=torch.int64, device=params.device
        )
        categorical = continuous = 0
        for block in self.blocks:
            if block.kind == "categorical":
                uniform = torch.rand(
                    len(params), 1, generator=generator, device=params.device, dtype=params.dtype
                )
                drawn = draw_levels(params[:, block.start : block.stop], uniform)
                torch.add(drawn, block.start, out=levels[:, categorical : categorical + 1])
                categorical += 1
            else:
                mean = params[:, block.start]
                column = rows[:, block.start]
                if noise:
                    std = torch.exp(0.5 * output["logvar"][:, continuous])
                    draw = torch.randn(
                        mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
                    )
                    torch.add(mean, std.mul_(draw), out=column)
                else:
                    column.copy_(mean)
                continuous += 1
        return rows.scatter_(1, levels, 1.0)

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "latent_dim": self.latent_dim,
            "s_dim": self.sensitive_dim,
            "hidden": list(self.hidden),
            "blocks": [
                {"column": b.column, "kind": b.kind, "start": b.start, "width": b.width}
                for b in self.blocks
            ],
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> TabularDecoder:
        blocks = [FeatureBlock(**block) for block in architecture["blocks"]]
        return cls(
            architecture["latent_dim"], architecture["s_dim"], architecture["hidden"], blocks
        )


class LabelHead(nn.Module):
    """p(y = 1 | input): the logit of the positive label."""

    def __init__(self, in_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.in_dim = in_dim
        self.hidden = tuple(int(size) for size in hidden)
        self.net = mlp(in_dim, self.hidden, 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).squeeze(1)

    @torch.no_grad()
    def shift_logit(self, offset: float) -> None:
        """Add ``offset`` to every logit the head produces, through its output bias."""
        self.net[-1].bias += offset

    def architecture(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "in_dim": self.in_dim, "hidden": list(self.hidden)}

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> LabelHead:
        return cls(architecture["in_dim"], architecture["hidden"])


def parameter_count(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters())
