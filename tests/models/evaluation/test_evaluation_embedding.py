from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.embedding import (
    fit_embedding,
    nearest_neighbours,
    split_columns,
    subsample_rows,
)
from fairdistill.models.spec import DatasetSpec, complete_spec

FRAME = pl.DataFrame(
    {
        "colour": ["red", "blue", None, "red"],
        "size": [1.0, 3.0, 5.0, None],
        "count": pl.Series([10, 10, 10, 10], dtype=pl.Int64),
        "sex": ["M", "F", "F", "M"],
        "y": ["yes", "no", "no", "yes"],
    }
)
SPEC = complete_spec(
    DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": {"column": "y", "positive": "yes"},
            "sensitive": [{"column": "sex", "privileged": ["M"]}],
        }
    ),
    FRAME,
)


def test_split_columns_types_sensitive_and_target_as_categorical() -> None:
    assert split_columns(SPEC, include_target=True) == (["sex", "colour", "y"], ["size", "count"])
    assert split_columns(SPEC, include_target=False)[0] == ["sex", "colour"]


def test_embedding_layout_values_and_dtype() -> None:
    embedding = fit_embedding(FRAME, SPEC)
    matrix = embedding.transform(FRAME)
    # sex 2 + colour 2 + missing level + y 2 + size 1 + indicator + count 1
    assert matrix.shape == (4, 10) and matrix.dtype == np.float32
    level = 1 / np.sqrt(2)
    assert matrix[0, :2] == pytest.approx([0.0, level])  # sex: F, M
    assert matrix[2, 2:5] == pytest.approx([0.0, 0.0, level])  # colour missing
    size = matrix[:3, 7]
    assert size.mean() == pytest.approx(0.0, abs=1e-6)
    assert size.std(ddof=1) == pytest.approx(1.0, abs=1e-6)
    assert matrix[3, 7:9] == pytest.approx([0.0, 1.0])  # missing size: at the mean, flagged
    assert matrix[:, 9] == pytest.approx(0.0)  # a constant column stays at 0


def test_one_category_apart_is_distance_one_and_unseen_categories_are_zero() -> None:
    embedding = fit_embedding(FRAME, SPEC)
    changed = FRAME.with_columns(pl.Series("colour", ["blue", "blue", None, "green"]))
    original, other = embedding.transform(FRAME), embedding.transform(changed)
    assert np.linalg.norm(original[0] - other[0]) == pytest.approx(1.0)
    assert other[3, 2:5] == pytest.approx([0.0, 0.0, 0.0])


def test_embedding_without_target_is_narrower() -> None:
    assert fit_embedding(FRAME, SPEC, include_target=False).width == 8


def test_an_incomplete_spec_is_refused() -> None:
    bare = SPEC.model_copy(
        update={"columns": {"colour": SPEC.columns["colour"].model_copy(update={"type": None})}}
    )
    with pytest.raises(ValueError, match="complete the spec"):
        fit_embedding(FRAME, bare)


def test_nearest_neighbours_are_exact_for_copies() -> None:
    rows = np.random.default_rng(0).normal(5.0, 3.0, size=(500, 40)).astype(np.float32)
    distances, indices = nearest_neighbours(rows, rows, 2)
    assert (distances[:, 0] == 0.0).all() and (indices[:, 0] == np.arange(500)).all()
    assert (distances[:, 1] > 0).all()


def test_subsample_rows_is_seeded_and_bounded() -> None:
    rows = np.arange(100).reshape(50, 2)
    first = subsample_rows(rows, 10, np.random.default_rng(3))
    again = subsample_rows(rows, 10, np.random.default_rng(3))
    assert first.shape == (10, 2) and (first == again).all()
    assert subsample_rows(rows, 80, np.random.default_rng(3)) is rows
