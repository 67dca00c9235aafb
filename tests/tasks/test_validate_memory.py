"""The validate stage refuses, before training, a row count that cannot fit in memory."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.errors import ConfigError
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.tasks.validate import (
    FLOAT_BYTES,
    GENERATION_MEMORY_FACTOR,
    available_memory_bytes,
    check_generation_memory,
    encoded_row_width,
)

PER_ROW = 50 * FLOAT_BYTES * GENERATION_MEMORY_FACTOR


def test_the_row_width_counts_one_hots_sensitive_levels_and_the_label() -> None:
    german = bundled_dataset("german")
    frame = pl.read_parquet(german.data_path)
    spec = complete_spec(load_spec(german.spec_path), frame)
    categorical = sum(
        len(spec.columns[name].categories or ())
        for name in spec.feature_columns
        if spec.columns[name].type == "categorical"
    )
    numeric = len(spec.feature_columns) - sum(
        spec.columns[name].type == "categorical" for name in spec.feature_columns
    )
    # German has no nulls: one number per numeric column; sex has two levels; one label.
    assert encoded_row_width(frame, spec) == categorical + numeric + 2 + 1


def test_rows_that_fit_pass_and_unknown_memory_is_not_a_refusal() -> None:
    check_generation_memory(1000, 50, available=1000 * PER_ROW)
    check_generation_memory(10**9, 50, available=None)


def test_rows_beyond_memory_are_refused_with_the_most_that_fits() -> None:
    with pytest.raises(ConfigError) as caught:
        check_generation_memory(1001, 50, available=1000 * PER_ROW)
    error = caught.value
    assert error.rule == "generate-rows-memory"
    assert "Generating 1,001 rows" in error.message and "50 encoded values per row" in error.message
    assert "at most 1,000 rows" in str(error.hint)


def test_available_memory_is_at_most_the_machine_memory() -> None:
    psutil = pytest.importorskip("psutil")
    available = available_memory_bytes()
    assert available is not None and 0 < available <= psutil.virtual_memory().total
