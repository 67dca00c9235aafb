"""A convolutional encoder/decoder pair for images, behind the interface of the tabular pair.

Images travel through fairdistill as flat rows, one value in [0, 1] per channel and pixel in
C x H x W order (see :class:`~fairdistill.models.image_codec.ImageCodec`); the pair reshapes
them into maps and back. Because :class:`ConvEncoder` and :class:`ImageDecoder` satisfy
:class:`~fairdistill.models.networks.LatentEncoder` and
:class:`~fairdistill.models.networks.LatentDecoder`, the teacher loss (reconstruction, KL,
distance correlation with the sensitive attribute), the distillation, the latent prior and
generation treat them exactly as they treat the tabular MLP pair.

Downsampling: the first convolution keeps the resolution, every later one halves it (rounded
up); the decoder mirrors that with transposed convolutions and crops to the image size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fairdistill.models.losses import gaussian_pair_kl
from fairdistill.models.networks import LATENT_LOGVAR_RANGE, LOGVAR_FLOOR, DecoderOutput

PixelLikelihood = Literal["bernoulli", "gaussian"]
# Two stages suit 8x8 to 32x32 images: 8x8 maps become 4x4 before the dense layer.
DEFAULT_CONV_CHANNELS = (32, 64)
DEFAULT_LIKELIHOOD: PixelLikelihood = "bernoulli"


def downsampled_size(size: int, stages: int) -> int:
    """Side of the feature maps after ``stages`` convolutions (the first keeps the size)."""
    for _ in range(max(stages - 1, 0)):
        size = math.ceil(size / 2)
    return size


def _check_image_arguments(shape: Sequence[int], conv_channels: Sequence[int]) -> None:
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"an image shape is (channels, height, width), got {tuple(shape)}")
    if not conv_channels or min(conv_channels) < 1:
        raise ValueError(f"conv_channels needs at least one positive width, got {conv_channels}")


class ConvEncoder(nn.Module):
    """Gaussian posterior q(z | image, condition) from a small convolutional network.

    The condition (label and sensitive one-hots) joins the flattened feature maps before the
    dense layer that gives the posterior mean and log-variance.
    """

    def __init__(
        self,
        shape: Sequence[int],
        cond_dim: int,
        conv_channels: Sequence[int],
        latent_dim: int,
    ):
        super().__init__()
        _check_image_arguments(shape, conv_channels)
        self.shape = tuple(int(side) for side in shape)
        self.conv_channels = tuple(int(width) for width in conv_channels)
        channels, height, width = self.shape
        self.in_dim = channels * height * width
        self.condition_dim = cond_dim
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        previous = channels
        for stage, maps in enumerate(self.conv_channels):
            stride = 1 if stage == 0 else 2
            layers += [nn.Conv2d(previous, maps, 3, stride=stride, padding=1), nn.SiLU()]
            previous = maps
        self.features = nn.Sequential(*layers, nn.Flatten())
        stages = len(self.conv_channels)
        flat = previous * downsampled_size(height, stages) * downsampled_size(width, stages)
        self.head = nn.Linear(flat + cond_dim, 2 * latent_dim)

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.features(x.reshape(x.shape[0], *self.shape))
        mu, logvar = self.head(torch.cat([maps, condition], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LATENT_LOGVAR_RANGE)

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "shape": list(self.shape),
            "cond_dim": self.condition_dim,
            "conv_channels": list(self.conv_channels),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> ConvEncoder:
        return cls(
            architecture["shape"],
            architecture["cond_dim"],
            architecture["conv_channels"],
            architecture["latent_dim"],
        )


class ImageDecoder(nn.Module):
    """p(image | z, s): a distribution per pixel, decoded by transposed convolutions.

    ``bernoulli``: one logit per pixel, the cross-entropy of the pixel value in [0, 1] (the
    usual likelihood of greyscale digits).
    ``gaussian``: a mean and a log-variance per pixel, as for the tabular continuous columns.
    Rows come back flat (C*H*W values), in the codec's order.
    """

    def __init__(
        self,
        latent_dim: int,
        s_dim: int,
        shape: Sequence[int],
        conv_channels: Sequence[int],
        likelihood: PixelLikelihood = DEFAULT_LIKELIHOOD,
    ):
        super().__init__()
        _check_image_arguments(shape, conv_channels)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"unknown pixel likelihood {likelihood!r}")
        self.latent_dim = latent_dim
        self.sensitive_dim = s_dim
        self.shape = tuple(int(side) for side in shape)
        self.conv_channels = tuple(int(width) for width in conv_channels)
        self.likelihood = likelihood
        channels, height, width = self.shape
        self.output_dim = channels * height * width
        stages = len(self.conv_channels)
        self.seed_shape = (
            self.conv_channels[-1],
            downsampled_size(height, stages),
            downsampled_size(width, stages),
        )
        self.project = nn.Sequential(
            nn.Linear(latent_dim + s_dim, math.prod(self.seed_shape)), nn.SiLU()
        )
        layers: list[nn.Module] = []
        for stage in range(stages - 1, 0, -1):
            wide, narrow = self.conv_channels[stage], self.conv_channels[stage - 1]
            layers += [nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1), nn.SiLU()]
        self.upsample = nn.Sequential(*layers)
        outputs = channels * (2 if likelihood == "gaussian" else 1)
        self.output = nn.Conv2d(self.conv_channels[0], outputs, 3, padding=1)

    def forward(self, z: Tensor, sensitive: Tensor) -> DecoderOutput:
        maps = self.project(torch.cat([z, sensitive], dim=1)).reshape(-1, *self.seed_shape)
        _, height, width = self.shape
        # Halving rounded up, so doubling back may overshoot an odd side by one pixel.
        maps = self.upsample(maps)[:, :, :height, :width]
        raw = self.output(maps)
        if self.likelihood == "bernoulli":
            return {"params": raw.flatten(1)}
        mean, raw_logvar = raw.split(self.shape[0], dim=1)
        # A soft floor, as in the tabular decoder: pixels that are always 0 would otherwise
        # shrink their variance towards zero and blow the likelihood up.
        logvar = LOGVAR_FLOOR + F.softplus(raw_logvar - LOGVAR_FLOOR)
        return {"params": mean.flatten(1), "logvar": logvar.flatten(1)}

    def reconstruction_loss(self, output: DecoderOutput, x: Tensor) -> Tensor:
        params = output["params"]
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        else:
            logvar = output["logvar"]
            nll = 0.5 * (logvar + (x - params).pow(2) * torch.exp(-logvar))
        return nll.sum(dim=1).mean()

    def divergence(self, reference: DecoderOutput, other: DecoderOutput) -> Tensor:
        ref, oth = reference["params"], other["params"]
        if self.likelihood == "bernoulli":
            p = torch.sigmoid(ref)
            kl = p * (F.logsigmoid(ref) - F.logsigmoid(oth)) + (1.0 - p) * (
                F.logsigmoid(-ref) - F.logsigmoid(-oth)
            )
        else:
            kl = gaussian_pair_kl(ref, reference["logvar"], oth, other["logvar"])
        return kl.sum(dim=1).mean()

    def sample(
        self, output: DecoderOutput, generator: torch.Generator, *, noise: bool = True
    ) -> Tensor:
        """Images as flat rows in [0, 1].

        Bernoulli: the mean, with or without ``noise``. The cross-entropy is the likelihood
        of grey levels in [0, 1], and a grey level is the Bernoulli mean; drawing 0 or 1
        per pixel would turn grey digits black and white (on the coloured digits the
        coverage of the real images fell from 0.90 to 0.17 when it did). Gaussian: the
        mean, plus the decoded noise when ``noise``, clipped to [0, 1].
        """
        params = output["params"]
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params)
        if noise:
            draw = torch.randn(
                params.shape, generator=generator, device=params.device, dtype=params.dtype
            )
            params = params + torch.exp(0.5 * output["logvar"]) * draw
        return params.clamp(0.0, 1.0)

    def architecture(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "latent_dim": self.latent_dim,
            "s_dim": self.sensitive_dim,
            "shape": list(self.shape),
            "conv_channels": list(self.conv_channels),
            "likelihood": self.likelihood,
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> ImageDecoder:
        return cls(
            architecture["latent_dim"],
            architecture["s_dim"],
            architecture["shape"],
            architecture["conv_channels"],
            architecture["likelihood"],
        )
