"""Shared real data for the evaluation tests: a slice of UCI Adult with its completed spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from fairdistill.models.spec import DatasetSpec, complete_spec

ADULT_PATH = Path("/work/shared/datasets/adult/adult.data")
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
ADULT_NUMERIC = [
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
]


def read_adult(n_rows: int | None = None) -> pl.DataFrame:
    """Adult as the pipeline sees it: trimmed strings, '?' missing, Int64 numerics."""
    raw = pl.read_csv(
        ADULT_PATH, has_header=False, new_columns=ADULT_COLUMNS, infer_schema=False, n_rows=n_rows
    )
    trimmed = raw.with_columns(pl.all().str.strip_chars()).filter(pl.col("income").is_not_null())
    return trimmed.with_columns(
        pl.when(pl.all() == "?").then(None).otherwise(pl.all()).name.keep()
    ).with_columns(pl.col(ADULT_NUMERIC).cast(pl.Int64))


def _adult_spec(frame: pl.DataFrame, *, with_race: bool) -> DatasetSpec:
    sensitive = [{"column": "sex", "privileged": ["Male"]}]
    if with_race:
        sensitive.append({"column": "race", "privileged": ["White"]})
    spec = DatasetSpec.model_validate(
        {
            "name": "adult",
            "target": {"column": "income", "positive": ">50K"},
            "sensitive": sensitive,
        }
    )
    return complete_spec(spec, frame)


@pytest.fixture(scope="session")
def adult() -> pl.DataFrame:
    return read_adult(n_rows=6000)


@pytest.fixture(scope="session")
def adult_split(adult: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    shuffled = adult.sample(fraction=1.0, shuffle=True, seed=7)
    return shuffled.head(4000), shuffled.tail(2000)


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """Small models gain nothing from threads, and OpenMP threads on a busy CPU slow down
    gradient boosting many times over; one thread keeps these tests fast and steady."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def adult_spec(adult: pl.DataFrame) -> DatasetSpec:
    """Target income (>50K positive); sensitive: sex (Male privileged)."""
    return _adult_spec(adult, with_race=False)


@pytest.fixture(scope="session")
def adult_spec_with_race(adult: pl.DataFrame) -> DatasetSpec:
    """As ``adult_spec``, with race (White privileged) as a second sensitive attribute."""
    return _adult_spec(adult, with_race=True)
