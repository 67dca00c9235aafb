"""Where tables and images part ways: the codec of a spec's modality, a stored codec of either,
and the teacher whose encoder/decoder pair fits the codec."""

from __future__ import annotations

import json

import polars as pl
import pytest

from fairdistill.models.codec import CODEC_FORMAT, TabularCodec
from fairdistill.models.errors import CheckpointError
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.image_networks import ConvEncoder, ImageDecoder
from fairdistill.models.modality import build_teacher, codec_from_dict, fit_codec
from fairdistill.models.networks import MLPEncoder, TabularDecoder
from fairdistill.models.spec import DatasetSpec, ImageSpec, complete_spec
from fairdistill.models.teacher import TeacherConfig

ROWS = 40


def people() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "income": ["high", "low"] * (ROWS // 2),
            "sex": ["f", "f", "m", "m"] * (ROWS // 4),
            "age": [float(20 + index) for index in range(ROWS)],
            "job": ["a", "b", "c", "d"] * (ROWS // 4),
        }
    )


IMAGE = {"channels": 2, "height": 2, "width": 2}


def pictures() -> pl.DataFrame:
    names = ImageSpec(**IMAGE).pixel_columns
    pixels = {name: [float(index % 2)] * ROWS for index, name in enumerate(names)}
    return people().select("income", "sex").hstack(pl.DataFrame(pixels))


def spec_of(frame: pl.DataFrame, **extra: object) -> DatasetSpec:
    raw = {
        "name": "toy",
        "target": {"column": "income", "positive": "high"},
        "sensitive": [{"column": "sex", "privileged": ["m"]}],
        **extra,
    }
    return complete_spec(DatasetSpec.model_validate(raw), frame)


@pytest.fixture(scope="module")
def table_codec() -> TabularCodec:
    frame = people()
    codec = fit_codec(frame, spec_of(frame))
    assert isinstance(codec, TabularCodec)
    return codec


@pytest.fixture(scope="module")
def image_codec() -> ImageCodec:
    frame = pictures()
    codec = fit_codec(frame, spec_of(frame, modality="image", image=IMAGE))
    assert isinstance(codec, ImageCodec)
    return codec


@pytest.mark.parametrize("kind", ["table_codec", "image_codec"])
def test_a_stored_codec_comes_back_as_its_own_kind(kind: str, request) -> None:
    codec = request.getfixturevalue(kind)
    restored = codec_from_dict(json.loads(json.dumps(codec.to_dict())))
    assert type(restored) is type(codec)
    assert restored.to_dict() == codec.to_dict()


def test_a_stored_state_of_no_known_format_is_refused(table_codec: TabularCodec) -> None:
    state = {**table_codec.to_dict(), "format": "pickle"}
    with pytest.raises(CheckpointError, match="Not a stored codec") as caught:
        codec_from_dict(state)
    assert CODEC_FORMAT in (caught.value.hint or "")


def test_a_table_gets_the_mlp_pair_over_its_blocks(table_codec: TabularCodec) -> None:
    teacher = build_teacher(table_codec, [2], TeacherConfig(latent_dim=3))
    assert type(teacher.encoder) is MLPEncoder and isinstance(teacher.decoder, TabularDecoder)
    assert teacher.decoder.output_dim == max(block.stop for block in table_codec.blocks)


@pytest.mark.parametrize(
    ("criterion", "head_inputs"), [("demographic_parity", 3), ("equalized_odds", 5)]
)
def test_images_get_the_convolutional_pair_and_the_same_label_head(
    image_codec: ImageCodec, criterion: str, head_inputs: int
) -> None:
    config = TeacherConfig(latent_dim=3, criterion=criterion)
    teacher = build_teacher(image_codec, [2], config)
    assert isinstance(teacher.encoder, ConvEncoder) and isinstance(teacher.decoder, ImageDecoder)
    assert teacher.encoder.shape == image_codec.shape == (2, 2, 2)
    # Conditioned on the label one-hot and the sensitive one-hot.
    assert teacher.encoder.condition_dim == 2 + 2
    # Under equalized odds the head reads s beside z.
    assert teacher.label_head.in_dim == head_inputs
    assert teacher.criterion == criterion
