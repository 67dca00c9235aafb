"""Rebuilding a stored module from the ``architecture()`` it describes itself with.

Every module fairdistill stores (encoders, decoders, label heads and the teacher that holds
them) describes itself with JSON-safe constructor arguments whose ``kind`` is its class name,
so its weights are kept as safetensors with that JSON beside them, never pickled. This module
imports each of those classes directly: a stored model rebuilds from any entry point, and no
module that defines a class has to import this one back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from fairdistill.models.errors import CheckpointError
from fairdistill.models.image_networks import ConvEncoder, ImageDecoder
from fairdistill.models.labeling import FeatureLabelModel
from fairdistill.models.networks import LabelHead, MLPEncoder, TabularDecoder
from fairdistill.models.teacher import FairVAE, LabelConditionedEncoder

Builder = Callable[[Mapping[str, Any]], nn.Module]


def _fair_vae(architecture: Mapping[str, Any]) -> FairVAE:
    return FairVAE.from_architecture(architecture, build_part=build_from_architecture)


BUILDERS: dict[str, Builder] = {
    MLPEncoder.__name__: MLPEncoder.from_architecture,
    LabelConditionedEncoder.__name__: LabelConditionedEncoder.from_architecture,
    TabularDecoder.__name__: TabularDecoder.from_architecture,
    LabelHead.__name__: LabelHead.from_architecture,
    ConvEncoder.__name__: ConvEncoder.from_architecture,
    ImageDecoder.__name__: ImageDecoder.from_architecture,
    FeatureLabelModel.__name__: FeatureLabelModel.from_architecture,
    FairVAE.__name__: _fair_vae,
}


def build_from_architecture(architecture: Mapping[str, Any]) -> nn.Module:
    """Rebuild an untrained module from the dict its ``architecture()`` returned."""
    kind = architecture.get("kind")
    if kind not in BUILDERS:
        raise CheckpointError(
            f"Unknown model architecture {kind!r}",
            rule="architecture.kind",
            hint=f"expected one of {sorted(BUILDERS)}; re-run the training stage that wrote it",
        )
    return BUILDERS[kind](architecture)


def module_from_state(architecture: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> nn.Module:
    """Rebuild a trained module from its ``architecture()`` and ``state_dict()`` (eval mode)."""
    module = build_from_architecture(architecture)
    try:
        module.load_state_dict(dict(tensors))
    except RuntimeError as error:
        raise CheckpointError(
            "The stored weights do not match the stored architecture",
            rule="checkpoint-architecture",
            hint="re-run the training stage that wrote them",
        ) from error
    return module.eval()
