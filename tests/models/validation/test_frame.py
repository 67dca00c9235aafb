"""The validation suite passes real data and names the check and column of each defect."""

from __future__ import annotations

import json

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.errors import DataValidationError
from fairdistill.models.spec import ColumnSpec, DatasetSpec, complete_spec, load_spec
from fairdistill.models.tables import read_table
from fairdistill.models.validation import (
    CHECK_ALL_NULL,
    CHECK_CELL_ROWS,
    CHECK_GROUP_ROWS,
    CHECK_NON_FINITE,
    CHECK_NUMERIC_TEXT,
    CHECK_SENSITIVE_GROUPS,
    CHECK_TARGET_CLASSES,
    CHECK_UNTYPED_MIXED,
    ValidationReport,
    build_expectation_suite,
    quick_check_failures,
    raise_for_failures,
    report_to_markdown,
    validate_frame,
)


@pytest.fixture(scope="module")
def sample(adult: pl.DataFrame) -> pl.DataFrame:
    return adult.sample(n=2000, seed=11)


def only_failure(report: ValidationReport, check: str, column: str | None):
    assert not report.success
    matches = [f for f in report.failures if f.check == check and f.column == column]
    assert len(matches) == 1, [(f.check, f.column) for f in report.failures]
    return matches[0]


def with_values(frame: pl.DataFrame, column: str, rows: int, value: object) -> pl.DataFrame:
    """``frame`` with the first ``rows`` values of ``column`` replaced by ``value``."""
    first = pl.int_range(pl.len()) < rows
    return frame.with_columns(
        pl.when(first).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def test_full_adult_passes(adult: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(adult, adult_spec, source="adult.parquet")
    assert report.success and report.failures == []
    assert report.gx_result["success"] is True
    assert report.statistics["rows"] == 48_842
    assert report.statistics["gx_evaluated_expectations"] == len(report.suite["expectations"])
    assert report.statistics["group_label_counts"]["sex"]["unprivileged, income=>50K"] == 1_769
    json.dumps(report.to_dict())  # the report is stored as a JSON artifact
    assert "passed" in report_to_markdown(report)
    raise_for_failures(report, "adult.parquet")  # no error


def test_german_passes() -> None:
    dataset = bundled_dataset("german")
    report = validate_frame(read_table(dataset.data_path), load_spec(dataset.spec_path), "german")
    assert report.success, report.failures


def test_suite_follows_the_spec(adult: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    completed = complete_spec(adult_spec, adult)
    suite = build_expectation_suite(completed, name="adult").to_json_dict()
    by_kind: dict[str, list[dict]] = {}
    for expectation in suite["expectations"]:
        by_kind.setdefault(expectation["type"], []).append(expectation["kwargs"])
    assert by_kind["expect_table_row_count_to_be_between"] == [{"min_value": 1000}]
    assert len(by_kind["expect_column_to_exist"]) == 15
    not_null = {kwargs["column"] for kwargs in by_kind["expect_column_values_to_not_be_null"]}
    assert {"age", "income", "sex", "education"} <= not_null
    assert not_null.isdisjoint({"workclass", "occupation", "native_country"})
    age = next(k for k in by_kind["expect_column_values_to_be_between"] if k["column"] == "age")
    assert (age["min_value"], age["max_value"]) == (17, 90)
    assert by_kind["expect_column_values_to_be_in_set"] == [
        {"column": "income", "value_set": ["<=50K", ">50K"]}
    ]


def test_target_with_one_class(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    frame = sample.filter(pl.col("income") == "<=50K")
    report = validate_frame(frame, adult_spec, source="one-class.csv")
    failure = only_failure(report, CHECK_TARGET_CLASSES, "income")
    assert failure.examples == [f"<=50K ({frame.height} rows)"]
    # The positive label the spec names is absent too, which GX reports, beside the
    # labels the column holds.
    absent = only_failure(report, "expect_column_distinct_values_to_contain_set", "income")
    assert absent.examples == ["<=50K"]


def test_target_with_a_third_label(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(with_values(sample, "income", 40, "unknown"), adult_spec, "x.csv")
    assert only_failure(report, CHECK_TARGET_CLASSES, "income")
    in_set = only_failure(report, "expect_column_values_to_be_in_set", "income")
    assert in_set.unexpected_count == 40 and in_set.examples == ["unknown"]


def test_sensitive_group_with_three_rows(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    men = sample.filter(pl.col("sex") == "Male")
    frame = pl.concat([men, sample.filter(pl.col("sex") == "Female").head(3)])
    failure = only_failure(validate_frame(frame, adult_spec, "x.csv"), CHECK_GROUP_ROWS, "sex")
    assert failure.unexpected_count == 3
    assert failure.examples == ["unprivileged: 3 rows"]


def test_group_label_cell_too_small(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    women_above = (pl.col("sex") == "Female") & (pl.col("income") == ">50K")
    frame = pl.concat([sample.filter(~women_above), sample.filter(women_above).head(4)])
    failure = only_failure(validate_frame(frame, adult_spec, "x.csv"), CHECK_CELL_ROWS, "sex")
    assert failure.unexpected_count == 4
    assert failure.examples == ["unprivileged, income=>50K: 4 rows"]


def test_sensitive_attribute_without_a_second_group(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    frame = sample.filter(pl.col("sex") == "Male")
    failure = only_failure(
        validate_frame(frame, adult_spec, "x.csv"), CHECK_SENSITIVE_GROUPS, "sex"
    )
    assert "no unprivileged rows" in failure.message


def test_numeric_value_out_of_range(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(with_values(sample, "age", 2, 150), adult_spec, "x.csv")
    failure = only_failure(report, "expect_column_values_to_be_between", "age")
    assert failure.unexpected_count == 2 and failure.examples == ["150"]
    assert len(report.failures) == 1


def test_nulls_in_a_non_nullable_column(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(with_values(sample, "age", 4, None), adult_spec, "x.csv")
    failure = only_failure(report, "expect_column_values_to_not_be_null", "age")
    assert failure.unexpected_count == 4
    assert failure.examples == ["row 0", "row 1", "row 2", "row 3"]


def test_nulls_in_a_nullable_column_pass(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(with_values(sample, "workclass", 30, None), adult_spec, "x.csv")
    assert report.success, report.failures


def test_all_null_column(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    frame = sample.with_columns(pl.lit(None, dtype=pl.String).alias("occupation"))
    failure = only_failure(validate_frame(frame, adult_spec, "x.csv"), CHECK_ALL_NULL, "occupation")
    assert failure.unexpected_count == frame.height


def test_infinity_in_a_numeric_column(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    frame = with_values(
        sample.with_columns(pl.col("hours_per_week").cast(pl.Float64)),
        "hours_per_week",
        3,
        float("inf"),
    )
    report = validate_frame(frame, adult_spec, "x.csv")
    failure = only_failure(report, CHECK_NON_FINITE, "hours_per_week")
    assert failure.unexpected_count == 3 and failure.examples == ["inf"]
    assert report.failures[0] is failure  # the root cause comes first


def test_nan_is_reported_as_non_finite_not_as_null(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    spec = adult_spec.model_copy(update={"columns": {}})  # nullability inferred from the data
    frame = with_values(
        sample.with_columns(pl.col("hours_per_week").cast(pl.Float64)),
        "hours_per_week",
        2,
        float("nan"),
    )
    report = validate_frame(frame, spec, "x.csv")
    assert [(f.check, f.column) for f in report.failures] == [(CHECK_NON_FINITE, "hours_per_week")]


def test_text_in_a_numeric_column(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    frame = with_values(sample.with_columns(pl.col("fnlwgt").cast(pl.String)), "fnlwgt", 3, "n/a")
    report = validate_frame(frame, adult_spec, "x.csv")
    failure = only_failure(report, CHECK_NUMERIC_TEXT, "fnlwgt")
    assert failure.unexpected_count == 3 and failure.examples == ["n/a"]
    assert len(report.failures) == 1  # no GX range check crashing on text


def test_text_among_numbers_in_an_untyped_column_is_refused_too(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    """A column the spec gives no type, 9 text values among 2,000 numbers,
    is refused as a declared numeric one is, instead of becoming a categorical."""
    untyped = adult_spec.model_copy(
        update={"columns": {k: v for k, v in adult_spec.columns.items() if k != "fnlwgt"}}
    )
    frame = with_values(sample.with_columns(pl.col("fnlwgt").cast(pl.String)), "fnlwgt", 9, "?")
    report = validate_frame(frame, untyped, "x.csv")
    failure = only_failure(report, CHECK_UNTYPED_MIXED, "fnlwgt")
    assert failure.unexpected_count == 9 and failure.examples == ["?"]
    assert "holds numbers in 1991 rows but text in 9 rows" in failure.message
    with pytest.raises(DataValidationError) as caught:
        raise_for_failures(report, "x.csv")
    assert "columns: {fnlwgt: {type: categorical}}" in str(caught.value.hint)
    # Declared categorical, the same values are categories; mostly text, they are anyway.
    typed = untyped.model_copy(
        update={"columns": {**untyped.columns, "fnlwgt": ColumnSpec(type="categorical")}}
    )
    assert not [f for f in validate_frame(frame, typed, "x.csv").failures if f.column == "fnlwgt"]
    codes = with_values(frame, "fnlwgt", 1900, "code")
    assert not [f for f in validate_frame(codes, untyped, "x.csv").failures if f.column == "fnlwgt"]


def test_quick_checks_find_the_first_failure_without_the_suite(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    frame = with_values(sample.with_columns(pl.col("fnlwgt").cast(pl.String)), "fnlwgt", 3, "n/a")
    quick = quick_check_failures(frame, adult_spec, "x.csv")
    full = validate_frame(frame, adult_spec, "x.csv")
    assert [(f.check, f.column) for f in quick] == [(CHECK_NUMERIC_TEXT, "fnlwgt")]
    assert (full.failures[0].check, full.failures[0].column) == (CHECK_NUMERIC_TEXT, "fnlwgt")


def test_missing_column_stops_at_the_schema(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(sample.drop("sex"), adult_spec, "x.csv")
    failure = only_failure(report, "expect_column_to_exist", "sex")
    assert "not in the data" in failure.message
    assert len(report.failures) == 1


def test_too_few_rows(sample: pl.DataFrame, adult_spec: DatasetSpec) -> None:
    report = validate_frame(sample.head(900), adult_spec, "x.csv")
    failure = only_failure(report, "expect_table_row_count_to_be_between", None)
    assert "900 rows" in failure.message


def test_integer_labels_and_two_sensitive_attributes() -> None:
    rows = 400
    frame = pl.DataFrame(
        {
            "label": [i % 2 for i in range(rows)],
            "sex": ["F", "M"] * (rows // 2),
            "race": ["a"] * 100 + ["b"] * 300,
            "x": [float(i) for i in range(rows)],
        }
    )
    spec = DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": {"column": "label", "positive": "1"},
            "sensitive": [
                {"column": "sex", "privileged": ["M"]},
                {"column": "race", "privileged": ["b"]},
            ],
            "min_rows": 100,
            "min_group_rows": 60,
        }
    )
    report = validate_frame(frame, spec, "toy.csv")
    # Row i has sex M and label 1 exactly when i is odd: the F cells lack one label.
    failure = only_failure(report, CHECK_CELL_ROWS, "sex")
    assert failure.examples == ["privileged, label=0: 0 rows", "unprivileged, label=1: 0 rows"]
    intersection = report.statistics["group_counts"]["sex & race"]
    assert intersection == {
        "sex=privileged & race=privileged": 150,
        "sex=privileged & race=unprivileged": 50,
        "sex=unprivileged & race=privileged": 150,
        "sex=unprivileged & race=unprivileged": 50,
    }
    only_failure(report, CHECK_GROUP_ROWS, "sex & race")


def test_markdown_and_error_name_the_first_failure(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    frame = with_values(with_values(sample, "age", 2, 150), "education", 5, None)
    report = validate_frame(frame, adult_spec, "input.csv")
    markdown = report_to_markdown(report)
    assert "| check | column | count | examples | problem |" in markdown
    assert "| expect_column_values_to_be_between | age | 2 | 150 |" in markdown
    with pytest.raises(DataValidationError) as caught:
        raise_for_failures(report, "input.csv")
    error = caught.value
    first = report.failures[0]
    assert (error.rule, error.column, error.file) == (first.check, first.column, "input.csv")
    assert "1 more check failed" in error.message
    assert error.hint


def test_left_out_and_constant_columns_are_warnings_not_failures(
    sample: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    frame = sample.with_columns(
        pl.Series("person_id", [f"P{i:05d}" for i in range(sample.height)]),
        pl.lit("US").alias("census"),
    )
    report = validate_frame(frame, complete_spec(adult_spec, frame), "input.csv")
    assert report.success
    assert len(report.warnings) == 2
    left_out, constant = report.warnings
    assert left_out.startswith("column 'person_id' is left out of the model")
    assert "2,000 distinct values" in left_out
    assert constant.startswith("column 'census' holds the same value ('US') in every row")
    assert "- column 'person_id' is left out" in report_to_markdown(report)
    assert validate_frame(sample, adult_spec, "input.csv").warnings == []
