"""The image codec: pixels in [0, 1] in C x H x W order, exact round trips, plain-JSON state."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.codec import TabularCodec
from fairdistill.models.errors import CheckpointError, DataValidationError, SpecError
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.modality import codec_from_dict, fit_codec
from fairdistill.models.spec import complete_spec, load_spec, parse_spec
from fairdistill.models.tables import read_table


@pytest.fixture(scope="module")
def digits() -> tuple[pl.DataFrame, object]:
    dataset = bundled_dataset("coloured-digits")
    frame = read_table(dataset.data_path).head(300)
    return frame, complete_spec(load_spec(dataset.spec_path), frame)


def small_image_spec(**image: object) -> dict:
    return {
        "name": "tiny",
        "modality": "image",
        "image": {"channels": 2, "height": 3, "width": 2, **image},
        "target": {"column": "label", "positive": "yes"},
        "sensitive": [{"column": "group", "privileged": ["a"]}],
    }


def tiny_frame(values: np.ndarray, columns: list[str]) -> pl.DataFrame:
    count = len(values)
    attributes = pl.DataFrame(
        {
            "label": ["yes", "no"] * (count // 2),
            "group": ["a", "a", "b", "b"] * (count // 4),
        }
    )
    return attributes.hstack(pl.DataFrame(values, schema=columns, orient="row"))


def test_pixels_are_encoded_channel_by_channel_in_row_order(digits) -> None:
    frame, spec = digits
    codec = fit_codec(frame, spec)
    assert isinstance(codec, ImageCodec)
    table = codec.encode(frame)
    assert table.features.shape == (300, 192) and table.features.dtype == np.float32
    images = codec.images(table)
    assert images.shape == (300, 3, 8, 8)
    # pixel_<channel>_<row>_<col> lands at images[:, channel, row, col].
    expected = frame.get_column("pixel_1_3_6").to_numpy()
    np.testing.assert_array_equal(images[:, 1, 3, 6], expected)
    assert codec.sensitive_columns == ["colour"] and codec.sensitive_level_counts == [2]
    assert codec.label_levels == ("low", "high")
    assert set(table.label.tolist()) == {0, 1}


def test_decode_restores_the_modelled_columns_exactly(digits) -> None:
    frame, spec = digits
    codec = fit_codec(frame, spec)
    table = codec.encode(frame)
    decoded = codec.decode(table.features, table.sensitive, table.label)
    # The split column is never modelled, so it is not generated either.
    assert decoded.columns == [name for name in frame.columns if name != "split"]
    assert decoded.equals(frame.drop("split"))


def test_pixel_range_is_scaled_to_unit_interval_and_back() -> None:
    spec = parse_spec(small_image_spec(min_value=0, max_value=255))
    columns = spec.image.pixel_columns
    values = np.random.default_rng(0).integers(0, 256, size=(8, 12)).astype(np.float32)
    frame = tiny_frame(values, columns)
    codec = ImageCodec.fit(frame, complete_spec(spec, frame))
    table = codec.encode(frame)
    np.testing.assert_allclose(table.features, values / 255, atol=1e-6)
    # Model output outside [0, 1] is clipped to the declared range.
    outside = table.features.copy()
    outside[0, 0], outside[0, 1] = -0.5, 1.5
    decoded = codec.decode(outside, table.sensitive, table.label)
    assert decoded.get_column(columns[0])[0] == 0.0 and decoded.get_column(columns[1])[0] == 255.0
    np.testing.assert_allclose(decoded.select(columns).to_numpy()[1:], values[1:], atol=1e-3)


def test_state_is_plain_json_and_restores_the_codec(digits) -> None:
    frame, spec = digits
    codec = fit_codec(frame, spec)
    state = json.loads(json.dumps(codec.to_dict()))
    restored = codec_from_dict(state)
    assert isinstance(restored, ImageCodec)
    assert restored.to_dict() == codec.to_dict()
    np.testing.assert_array_equal(restored.encode(frame).features, codec.encode(frame).features)


def test_codec_dispatch_by_modality_and_format(digits, adult_sample) -> None:
    dataset = bundled_dataset("adult")
    adult_spec = complete_spec(load_spec(dataset.spec_path), adult_sample)
    tabular = fit_codec(adult_sample, adult_spec)
    assert isinstance(tabular, TabularCodec)
    assert isinstance(codec_from_dict(tabular.to_dict()), TabularCodec)
    with pytest.raises(CheckpointError, match="Not a stored codec"):
        codec_from_dict({"format": "something-else"})
    with pytest.raises(CheckpointError):
        ImageCodec.from_dict(tabular.to_dict())


def test_missing_or_non_finite_pixels_are_refused(digits) -> None:
    frame, spec = digits
    codec = fit_codec(frame, spec)
    with pytest.raises(DataValidationError, match="pixel columns") as missing:
        codec.encode(frame.drop("pixel_2_7_7"))
    assert missing.value.column == "pixel_2_7_7"
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(None)
        .otherwise(pl.col("pixel_0_2_2"))
        .alias("pixel_0_2_2")
    )
    with pytest.raises(DataValidationError, match="1 images") as bad:
        codec.encode(broken)
    assert bad.value.column == "pixel_0_2_2"


def test_features_other_than_pixels_are_refused() -> None:
    spec = parse_spec(small_image_spec())
    values = np.zeros((8, 12), dtype=np.float32)
    frame = tiny_frame(values, spec.image.pixel_columns).with_columns(pl.lit(3).alias("age"))
    with pytest.raises(SpecError, match="only its pixels") as caught:
        ImageCodec.fit(frame, complete_spec(spec, frame))
    assert caught.value.column == "age"
