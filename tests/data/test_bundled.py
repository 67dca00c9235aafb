"""The bundled datasets: documented contents, specs that fit their data, reproducible bytes."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from fairdistill.data import BUNDLED_DATASETS, BundledDataset, bundled_dataset
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.tables import file_sha256, read_table

RAW_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ADULT_INTEGERS = {
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
}
GERMAN_INTEGERS = {
    "duration_months",
    "credit_amount",
    "installment_rate",
    "present_residence",
    "age",
    "existing_credits",
    "people_liable",
}


@pytest.fixture(scope="module")
def adult() -> pl.DataFrame:
    return read_table(bundled_dataset("adult").data_path)


@pytest.fixture(scope="module")
def german() -> pl.DataFrame:
    return read_table(bundled_dataset("german").data_path)


def test_bundled_names_and_paths() -> None:
    assert BUNDLED_DATASETS == ("adult", "german", "coloured-digits")
    for name in BUNDLED_DATASETS:
        dataset = bundled_dataset(name)
        assert isinstance(dataset, BundledDataset)
        assert dataset.data_path.name == f"{name}.parquet"
        assert dataset.data_path.is_file() and dataset.spec_path.is_file()
        assert (dataset.data_path.parent / "README.md").is_file()
        assert dataset.data_path.stat().st_size < 5 * 1024 * 1024


def test_an_unknown_name_is_a_lookup_error_listing_the_available_ones() -> None:
    # Users' names are refused earlier, with a ConfigError (tests/models/test_config.py).
    with pytest.raises(KeyError, match="adult, german"):
        bundled_dataset("compas")


@pytest.mark.parametrize("name", BUNDLED_DATASETS)
def test_readme_records_the_parquet_sha256(name: str) -> None:
    dataset = bundled_dataset(name)
    readme = (dataset.data_path.parent / "README.md").read_text(encoding="utf-8")
    assert file_sha256(dataset.data_path) in readme
    assert "CC BY 4.0" in readme


@pytest.mark.parametrize("name", BUNDLED_DATASETS)
def test_spec_fits_its_data(name: str) -> None:
    dataset = bundled_dataset(name)
    frame = read_table(dataset.data_path)
    spec = load_spec(dataset.spec_path)
    completed = complete_spec(spec, frame, source=str(dataset.data_path))
    assert spec.provenance is not None and spec.provenance.licence == "CC BY 4.0"
    assert set(spec.target.classes or ()) == set(frame.get_column(spec.target.column).unique())
    for column, column_spec in spec.columns.items():
        series = frame.get_column(column)
        assert column_spec.nullable == (series.null_count() > 0), column
        if column_spec.min is not None:
            assert series.min() >= column_spec.min, column
        if column_spec.max is not None:
            assert series.max() <= column_spec.max, column
    assert completed.ignored_columns == []


def test_adult_contents(adult: pl.DataFrame) -> None:
    assert adult.shape == (48_842, 15)
    assert "capital_loss" in adult.columns and "native_country" in adult.columns
    for column, dtype in adult.schema.items():
        assert dtype == (pl.Int64 if column in ADULT_INTEGERS else pl.String), column
    assert adult.get_column("income").value_counts().sort("income").rows() == [
        ("<=50K", 37_155),
        (">50K", 11_687),
    ]
    strings = adult.select(pl.col(pl.String))
    assert not strings.select(pl.any_horizontal(pl.all() == "?").any()).item()
    assert not strings.select(pl.any_horizontal(pl.all().str.contains(r"^\s|\s$")).any()).item()
    null_counts = zip(adult.columns, adult.null_count().row(0), strict=True)
    nulls = {name: count for name, count in null_counts if count}
    assert nulls == {"workclass": 2_799, "occupation": 2_809, "native_country": 857}


def test_adult_spec_audits_sex_only() -> None:
    spec = load_spec(bundled_dataset("adult").spec_path)
    assert spec.target.column == "income" and spec.target.positive == ">50K"
    assert [(a.column, a.privileged) for a in spec.sensitive] == [("sex", ("Male",))]
    readme = (bundled_dataset("adult").data_path.parent / "README.md").read_text("utf-8")
    assert "privileged: [White]" in readme


def test_german_contents(german: pl.DataFrame) -> None:
    assert german.shape == (1_000, 22)
    for column, dtype in german.schema.items():
        assert dtype == (pl.Int64 if column in GERMAN_INTEGERS else pl.String), column
    assert german.null_count().sum_horizontal().item() == 0
    assert german.get_column("sex").value_counts().sort("sex").rows() == [
        ("female", 310),
        ("male", 690),
    ]
    assert german.get_column("credit_risk").value_counts().sort("credit_risk").rows() == [
        ("bad", 300),
        ("good", 700),
    ]
    codes = german.select(pl.any_horizontal(pl.col(pl.String).str.contains(r"^A\d+$")).any())
    assert codes.item() is False
    assert set(german.get_column("telephone").unique()) == {"yes", "no"}


def test_german_sex_follows_the_personal_status_code(german: pl.DataFrame) -> None:
    raw = RAW_DATASETS / "german" / "german.data"
    if not raw.is_file():
        pytest.skip(reason="raw German credit file not available")
    codes = [line.split()[8] for line in raw.read_text().splitlines()]
    expected = ["female" if code in {"A92", "A95"} else "male" for code in codes]
    assert german.get_column("sex").to_list() == expected
    statuses = german.get_column("personal_status").unique().to_list()
    assert all(not re.search(r"male|:", status) for status in statuses)


def test_rebuild_gives_the_same_bytes(tmp_path: Path) -> None:
    if not (RAW_DATASETS / "adult" / "adult.test").is_file():
        pytest.skip(reason="raw UCI files not available")
    from fairdistill.data.build_datasets import build_adult, build_german, write_parquet

    for name, build in (("adult", build_adult), ("german", build_german)):
        first = write_parquet(build(RAW_DATASETS), tmp_path / f"{name}-1.parquet")
        second = write_parquet(build(RAW_DATASETS), tmp_path / f"{name}-2.parquet")
        assert first == second == file_sha256(bundled_dataset(name).data_path)
