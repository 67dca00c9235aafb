"""Image specs (pixel columns declared by the image section) and a dataset's own split."""

from __future__ import annotations

import polars as pl
import pytest
import yaml

from fairdistill.models.errors import DataValidationError, SpecError
from fairdistill.models.spec import complete_spec, parse_spec, spec_to_yaml
from fairdistill.models.splitting import declared_split

BASE = {
    "name": "pictures",
    "target": {"column": "label", "positive": "yes"},
    "sensitive": [{"column": "group", "privileged": ["a"]}],
}


def image_spec(**extra: object) -> dict:
    return {**BASE, "modality": "image", "image": {"channels": 2, "height": 2, "width": 3}, **extra}


def test_image_section_declares_every_pixel_column() -> None:
    spec = parse_spec(image_spec())
    assert spec.image is not None and spec.image.shape == (2, 2, 3)
    first = ["pixel_0_0_0", "pixel_0_0_1", "pixel_0_0_2", "pixel_0_1_0"]
    assert spec.image.pixel_columns[:4] == first
    assert spec.image.pixel_columns[-1] == "pixel_1_1_2"
    assert spec.feature_columns == spec.image.pixel_columns
    column = spec.column("pixel_1_0_2")
    assert (column.type, column.nullable, column.min, column.max) == ("continuous", False, 0.0, 1.0)


def test_listed_columns_win_and_the_expansion_survives_a_round_trip() -> None:
    raw = image_spec(columns={"pixel_0_0_0": {"type": "continuous", "min": 0.1, "max": 0.9}})
    raw["image"]["column_prefix"] = "pixel_"
    spec = parse_spec(raw)
    assert spec.column("pixel_0_0_0").min == 0.1 and spec.column("pixel_0_0_0").nullable is None
    assert parse_spec(yaml.safe_load(spec_to_yaml(spec))) == spec


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**BASE, "modality": "image"}, "image"),
        ({**BASE, "image": {"channels": 1, "height": 2, "width": 2}}, "image"),
        (image_spec(image={"channels": 1, "height": 2, "width": 2, "max_value": 0}), "max_value"),
        ({**BASE, "split_column": "label"}, "split_column"),
        ({**BASE, "split_column": "part", "columns": {"part": {"role": "ignore"}}}, "split_column"),
    ],
)
def test_inconsistent_image_or_split_fields_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        parse_spec(raw)
    assert caught.value.rule == "spec-schema"


def frame_with_split(parts: list[str | None]) -> pl.DataFrame:
    count = len(parts)
    return pl.DataFrame(
        {
            "label": ["yes", "no"] * (count // 2),
            "group": ["a"] * count,
            "part": parts,
            "size": list(range(count)),
        }
    )


def test_split_column_is_named_but_never_modelled() -> None:
    spec = parse_spec({**BASE, "split_column": "part"})
    frame = frame_with_split(["train", "test"] * 4)
    completed = complete_spec(spec, frame)
    assert completed.feature_columns == ["size"] and "part" not in completed.columns
    with pytest.raises(SpecError, match="'part'") as caught:
        complete_spec(spec, frame.drop("part"))
    assert caught.value.column == "part"


def test_declared_split_keeps_the_rows_where_the_data_puts_them() -> None:
    frame = frame_with_split(["train", "train", "test", "train", "test", "train"])
    train, test = declared_split(frame, "part")
    assert train.get_column("size").to_list() == [0, 1, 3, 5]
    assert test.get_column("size").to_list() == [2, 4]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (["train", "valid", "test", None], "2 values other than"),
        (["train", "train", "train", "train"], "No row is marked 'test'"),
    ],
)
def test_declared_split_refuses_unknown_values_and_an_empty_side(
    parts: list[str | None], message: str
) -> None:
    with pytest.raises(DataValidationError, match=message) as caught:
        declared_split(frame_with_split(parts), "part")
    assert caught.value.column == "part" and caught.value.rule == "split-values"
