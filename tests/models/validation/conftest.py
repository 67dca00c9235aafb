"""Shared fixtures of the validation tests: Great Expectations kept offline, the Adult table."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.spec import DatasetSpec, load_spec
from fairdistill.models.tables import read_table


@pytest.fixture(autouse=True)
def quiet_great_expectations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="package")
def adult() -> pl.DataFrame:
    return read_table(bundled_dataset("adult").data_path)


@pytest.fixture(scope="package")
def adult_spec() -> DatasetSpec:
    return load_spec(bundled_dataset("adult").spec_path)
