"""Stored modules rebuild by kind, from their JSON architecture and their weights."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fairdistill.models.architectures import (
    BUILDERS,
    build_from_architecture,
    module_from_state,
)
from fairdistill.models.blocks import FeatureBlock
from fairdistill.models.errors import CheckpointError
from fairdistill.models.image_networks import ConvEncoder, ImageDecoder
from fairdistill.models.labeling import FeatureLabelModel
from fairdistill.models.networks import LabelHead, MLPEncoder, TabularDecoder
from fairdistill.models.teacher import FairVAE, LabelConditionedEncoder

BLOCKS = [FeatureBlock("a", "categorical", 0, 3), FeatureBlock("b", "continuous", 3, 1)]
SHAPE = (3, 8, 8)


def every_kind() -> list[nn.Module]:
    """One module of every stored kind, the teacher with a feature label model, with image
    and label-only parts too."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return [
            MLPEncoder(4, 4, [8], 2),
            LabelConditionedEncoder(4, 4, [8], 2),
            TabularDecoder(2, 2, [8], BLOCKS),
            LabelHead(2, [4]),
            ConvEncoder(SHAPE, 4, (4, 8), 2),
            ImageDecoder(2, 2, SHAPE, (4, 8), "gaussian"),
            FeatureLabelModel(4, [2], [3], [4], 3),
            FairVAE(
                MLPEncoder(4, 4, [8], 2),
                TabularDecoder(2, 2, [8], BLOCKS),
                LabelHead(2, [4]),
                "demographic_parity",
                FeatureLabelModel(4, [2], [3], [4], 3),
            ),
            FairVAE(
                LabelConditionedEncoder(192, 4, [8], 2),
                ImageDecoder(2, 2, SHAPE, (4,)),
                LabelHead(4, [4]),
                "equalized_odds",
            ),
        ]


def test_every_stored_kind_has_a_builder() -> None:
    assert {type(module).__name__ for module in every_kind()} == set(BUILDERS)


@pytest.mark.parametrize("module", every_kind(), ids=lambda module: type(module).__name__)
def test_a_module_rebuilds_from_its_json_architecture_and_weights(module: nn.Module) -> None:
    architecture = json.loads(json.dumps(module.architecture()))
    rebuilt = module_from_state(architecture, module.state_dict())
    assert type(rebuilt) is type(module)
    assert rebuilt.architecture() == module.architecture()
    assert not rebuilt.training
    for name, value in module.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name


def test_a_rebuilt_teacher_keeps_the_kind_of_each_part() -> None:
    image_teacher = every_kind()[-1]
    rebuilt = build_from_architecture(image_teacher.architecture())
    assert isinstance(rebuilt, FairVAE)
    assert isinstance(rebuilt.encoder, LabelConditionedEncoder)
    assert isinstance(rebuilt.decoder, ImageDecoder)
    assert rebuilt.criterion == "equalized_odds"


@pytest.mark.parametrize("architecture", [{"kind": "Transformer"}, {}, {"kind": None}])
def test_an_unknown_kind_is_refused_with_the_known_ones(architecture: dict) -> None:
    with pytest.raises(CheckpointError, match="Unknown model architecture") as caught:
        build_from_architecture(architecture)
    assert "MLPEncoder" in (caught.value.hint or "")


def test_weights_of_another_shape_are_refused() -> None:
    small, wide = MLPEncoder(4, 4, [8], 2), MLPEncoder(4, 4, [16], 2)
    with pytest.raises(CheckpointError, match="do not match"):
        module_from_state(small.architecture(), wide.state_dict())
