"""The quick checks (polars) find what the full validation (Great Expectations) finds.

The command line refuses a bad table on :func:`quick_check_failures` without importing GX;
the validate stage records GX's verdict. A user must get the same answer from both: the
same failures in the same order, with the same counts, messages and examples.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import polars as pl
import pytest

from fairdistill.models.spec import DatasetSpec
from fairdistill.models.validation import quick_check_failures, validate_frame
from fairdistill.models.validation.polars_suite import evaluate_expectations
from fairdistill.models.validation.suite import declared_expectations


@pytest.fixture(scope="module")
def sample(adult: pl.DataFrame) -> pl.DataFrame:
    return adult.sample(n=1500, seed=5)


@pytest.fixture(scope="module")
def sample_spec(adult_spec: DatasetSpec) -> DatasetSpec:
    """Adult's spec; small groups are not what these cases are about, and 1,500 rows have
    few of them."""
    return DatasetSpec.model_validate({**adult_spec.model_dump(), "min_group_rows": 20})


def first_rows(frame: pl.DataFrame, column: str, rows: int, value: object) -> pl.DataFrame:
    """``frame`` with ``value`` in ``column`` on every third of its first rows."""
    chosen = (pl.int_range(pl.len()) % 3 == 0) & (pl.int_range(pl.len()) < 3 * rows)
    return frame.with_columns(
        pl.when(chosen).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def respec(spec: DatasetSpec, **changes: object) -> DatasetSpec:
    return DatasetSpec.model_validate({**spec.model_dump(), **changes})


def with_column(spec: DatasetSpec, column: str, **changes: object) -> DatasetSpec:
    columns = spec.model_dump()["columns"]
    columns[column] = {**columns.get(column, {}), **changes}
    return respec(spec, columns=columns)


Case = Callable[[pl.DataFrame, DatasetSpec], tuple[pl.DataFrame, DatasetSpec]]

CASES: dict[str, Case] = {
    "clean": lambda frame, spec: (frame, spec),
    "age above max, many values": lambda frame, spec: (
        frame.with_columns((pl.col("age") + pl.int_range(pl.len()) % 7 * 10).alias("age")),
        spec,
    ),
    "age below min, nulls elsewhere": lambda frame, spec: (
        first_rows(first_rows(frame, "age", 4, 3), "hours_per_week", 30, None),
        with_column(spec, "hours_per_week", nullable=True),
    ),
    "declared complete column with nulls": lambda frame, spec: (
        first_rows(frame, "education", 25, None),
        spec,
    ),
    "float column with NaN and a bound": lambda frame, spec: (
        first_rows(
            frame.with_columns(pl.col("hours_per_week").cast(pl.Float64)),
            "hours_per_week",
            6,
            float("nan"),
        ),
        with_column(spec, "hours_per_week", type="continuous", max=60.0),
    ),
    "numbers written as text, above max": lambda frame, spec: (
        frame.with_columns(pl.col("education_num").cast(pl.String)),
        with_column(spec, "education_num", max=12),
    ),
    "target with nulls": lambda frame, spec: (first_rows(frame, "income", 3, None), spec),
    "positive label absent": lambda frame, spec: (
        frame,
        respec(spec, target={"column": "income", "positive": ">50k"}),
    ),
    "label outside the classes": lambda frame, spec: (
        first_rows(frame, "income", 60, "unknown"),
        spec,
    ),
    "sensitive with nulls": lambda frame, spec: (first_rows(frame, "sex", 8, None), spec),
    "too few rows": lambda frame, spec: (frame, respec(spec, min_rows=5000)),
    "constraints broken": lambda frame, spec: (
        first_rows(frame, "capital_loss", 9, 100),
        respec(
            spec,
            constraints=[
                "capital_gain == 0 or capital_loss == 0",
                "hours_per_week >= education_num",
                "education_num determined by education",
            ],
        ),
    ),
    "split column outside train and test": lambda frame, spec: (
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) % 5 == 0)
            .then(pl.lit("test"))
            .when(pl.int_range(pl.len()) % 97 == 0)
            .then(pl.lit("validation"))
            .otherwise(pl.lit("train"))
            .alias("part")
        ),
        respec(spec, split_column="part"),
    ),
    "split column of numbers": lambda frame, spec: (
        frame.with_columns((pl.int_range(pl.len()) % 4 == 0).cast(pl.Int64).alias("part")),
        respec(spec, split_column="part"),
    ),
}


def described(failures: list) -> list[tuple]:
    return [(f.check, f.column, f.unexpected_count, f.message, f.examples) for f in failures]


@pytest.mark.parametrize("name", CASES)
def test_quick_checks_find_what_the_suite_finds(
    name: str, sample: pl.DataFrame, sample_spec: DatasetSpec
) -> None:
    frame, spec = CASES[name](sample, sample_spec)
    full = validate_frame(frame, spec, source="table.csv")
    quick = quick_check_failures(frame, spec, "table.csv")
    assert described(quick) == described(full.failures)
    assert (name == "clean") == (full.failures == [])


def test_statistics_count_the_expectations(sample: pl.DataFrame, sample_spec: DatasetSpec) -> None:
    frame, spec = CASES["age above max, many values"](sample, sample_spec)
    full = validate_frame(frame, spec, source="table.csv")
    result = evaluate_expectations(frame, declared_expectations(spec))
    assert result["statistics"]["evaluated_expectations"] == len(full.suite["expectations"])
    assert (
        result["statistics"]["successful_expectations"]
        == full.statistics["gx_successful_expectations"]
    )
    assert result["success"] is False


def test_quick_checks_do_not_import_great_expectations() -> None:
    """Run in a fresh interpreter: the point of the quick checks is not paying GX's import."""
    program = (
        "import sys, polars as pl\n"
        "from fairdistill.data import bundled_dataset\n"
        "from fairdistill.models.spec import load_spec\n"
        "from fairdistill.models.tables import read_table\n"
        "from fairdistill.models.validation import quick_check_failures\n"
        "adult = bundled_dataset('adult')\n"
        "frame = read_table(adult.data_path).head(2000)\n"
        "frame = frame.with_columns(pl.col('age') + 80)\n"
        "failures = quick_check_failures(frame, load_spec(adult.spec_path), 'adult')\n"
        "assert failures and failures[0].check == 'expect_column_values_to_be_between'\n"
        "assert 'great_expectations' not in sys.modules, 'GX was imported'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
