"""The one place where the pipeline tells a table from an image dataset.

The stages fit, store and load a codec and build a teacher through these functions; past
them, the teacher loss, the distillation, the prior and generation only see an
:class:`EncodedTable` and the encoder/decoder interface, whatever the data type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from fairdistill.models.codec import CODEC_FORMAT, TabularCodec
from fairdistill.models.errors import CheckpointError
from fairdistill.models.image_codec import IMAGE_CODEC_FORMAT, ImageCodec
from fairdistill.models.image_networks import (
    DEFAULT_CONV_CHANNELS,
    DEFAULT_LIKELIHOOD,
    ConvEncoder,
    ImageDecoder,
)
from fairdistill.models.networks import LabelHead
from fairdistill.models.spec import DatasetSpec
from fairdistill.models.teacher import FairVAE, TeacherConfig

Codec = TabularCodec | ImageCodec
# The encoder is conditioned on the label one-hot as well as the sensitive one-hots.
_LABEL_CONDITION_DIM = 2


def fit_codec(frame: pl.DataFrame, spec: DatasetSpec) -> Codec:
    """The codec of the spec's modality, fitted on the training frame."""
    if spec.modality == "image":
        return ImageCodec.fit(frame, spec)
    return TabularCodec.fit(frame, spec)


def codec_from_dict(state: dict[str, Any]) -> Codec:
    """A stored codec of either modality, recognised by its ``format``."""
    kind = state.get("format")
    if kind == IMAGE_CODEC_FORMAT:
        return ImageCodec.from_dict(state)
    if kind == CODEC_FORMAT:
        return TabularCodec.from_dict(state)
    raise CheckpointError(
        f"Not a stored codec (format {kind!r})",
        rule="codec-format",
        hint=f"expected {CODEC_FORMAT!r} or {IMAGE_CODEC_FORMAT!r}; re-run the prepare stage",
    )


def build_teacher(codec: Codec, sensitive_levels: Sequence[int], config: TeacherConfig) -> FairVAE:
    """An untrained teacher whose encoder/decoder pair fits the codec's data type.

    Tables get the MLP pair (``config.hidden`` wide); images the convolutional pair. The
    label head and the fairness criterion are the same for both.
    """
    if isinstance(codec, TabularCodec):
        return FairVAE.build(codec.blocks, sensitive_levels, config)
    sensitive_dim = sum(sensitive_levels)
    head_dim = config.latent_dim + (sensitive_dim if config.criterion == "equalized_odds" else 0)
    return FairVAE(
        ConvEncoder(
            codec.shape,
            _LABEL_CONDITION_DIM + sensitive_dim,
            DEFAULT_CONV_CHANNELS,
            config.latent_dim,
        ),
        ImageDecoder(
            config.latent_dim, sensitive_dim, codec.shape, DEFAULT_CONV_CHANNELS, DEFAULT_LIKELIHOOD
        ),
        LabelHead(head_dim, config.label_hidden),
        config.criterion,
    )
