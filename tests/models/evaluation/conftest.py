"""Shared real data for the evaluation tests: a slice of UCI Adult with its completed spec."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from fairdistill.data import bundled_dataset
from fairdistill.models.spec import DatasetSpec, complete_spec


def read_adult(n_rows: int | None = None) -> pl.DataFrame:
    """Adult as the pipeline sees it: the bundled, cleaned table."""
    return pl.read_parquet(bundled_dataset("adult").data_path, n_rows=n_rows)


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
