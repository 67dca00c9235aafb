"""The Great Expectations half of validation: a suite built from a completed spec (columns
exist, row count, nulls, target values, numeric ranges), run on an ephemeral context, and
its JSON result turned into failures a user can act on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from fairdistill.models.constraints import Rule, broken_rows, describe_rows, spec_rules
from fairdistill.models.spec import SPLIT_TEST, SPLIT_TRAIN, ColumnSpec, DatasetSpec
from fairdistill.models.validation.report import (
    CHECK_SPEC_CONSTRAINT,
    MAX_EXAMPLES,
    ValidationFailure,
    ValidationReport,
    rows_text,
)

if TYPE_CHECKING:
    import great_expectations as gx

NUMERIC_TYPES = ("integer", "continuous")
# The computed column through which the suite checks one of the spec's constraints.
CONSTRAINT_COLUMN_PREFIX = "constraint:"


def _gx() -> Any:
    """Great Expectations, imported on first use: it takes 2-4 s on two cores, and the
    command line refuses most bad inputs with fairdistill's own checks before that."""
    import great_expectations

    return great_expectations


@dataclass(frozen=True)
class Expectation:
    """One expectation of the suite, without Great Expectations: its type as GX names it
    (``expect_column_values_to_be_between``), its arguments, notes and meta. The suite is
    built from these, and :mod:`.polars_suite` evaluates the same list without GX."""

    type: str
    kwargs: dict[str, Any]
    notes: str | None = None
    meta: dict[str, Any] | None = None

    def to_gx(self) -> Any:
        gx_class = "".join(part.capitalize() for part in self.type.split("_"))
        extra = {"meta": self.meta} if self.meta else {}
        return getattr(_gx().expectations, gx_class)(**self.kwargs, notes=self.notes, **extra)


def build_expectation_suite(spec: DatasetSpec, name: str) -> gx.ExpectationSuite:
    """The GX suite of a completed spec (every column typed, see ``complete_spec``)."""
    expectations = [item.to_gx() for item in declared_expectations(spec)]
    return _gx().ExpectationSuite(name=name, expectations=expectations)


def declared_expectations(spec: DatasetSpec) -> list[Expectation]:
    """What a completed spec declares about its table, in the suite's order."""
    found = [
        Expectation(
            "expect_table_row_count_to_be_between",
            {"min_value": spec.min_rows},
            f"min_rows: {spec.min_rows} in the spec",
        )
    ]
    found += [Expectation("expect_column_to_exist", {"column": c}) for c in named_columns(spec)]
    found += _target_expectations(spec)
    found += [
        Expectation(
            "expect_column_values_to_not_be_null",
            {"column": column},
            "a sensitive attribute must be known for every row",
        )
        for column in spec.sensitive_columns
    ]
    if spec.split_column:
        found.append(
            Expectation(
                "expect_column_values_to_be_in_set",
                {"column": spec.split_column, "value_set": [SPLIT_TRAIN, SPLIT_TEST]},
                "split_column of the spec: every row is in the train or the test part",
            )
        )
    for column, column_spec in spec.columns.items():
        if column_spec.role == "feature":
            found += _feature_expectations(column, column_spec)
    return found + [_constraint_expectation(rule) for rule in spec_rules(spec)]


def constraint_column(rule: Rule) -> str:
    return f"{CONSTRAINT_COLUMN_PREFIX}{rule.name}"


def _constraint_expectation(rule: Rule) -> Expectation:
    """A constraint is checked on a computed column (:func:`with_constraint_columns`) that
    is null where a row obeys the rule and holds the row's values where it breaks it, so
    GX counts the breaking rows and shows them. One column serves every form, and the
    meaning of a rule is the one the synthetic rows are held to (``broken_rows``)."""
    return Expectation(
        "expect_column_values_to_be_null",
        {"column": constraint_column(rule)},
        f"constraint '{rule.text}' of the spec: a value here is a row that breaks it",
        {"constraint": rule.text, "constraint_name": rule.name, "columns": rule.columns},
    )


def with_constraint_columns(frame: pl.DataFrame, spec: DatasetSpec) -> pl.DataFrame:
    """``frame`` with the computed column of each of the spec's constraints."""
    rules = spec_rules(spec)
    if not rules:
        return frame
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    # NaN is reported as a non-finite value, not also as a broken rule.
    judged = frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame
    return frame.with_columns(
        describe_rows(judged, rule, broken_rows(judged, rule)).alias(constraint_column(rule))
        for rule in rules
    )


def _target_expectations(spec: DatasetSpec) -> list[Expectation]:
    target = spec.target
    found = [
        Expectation(
            "expect_column_values_to_not_be_null",
            {"column": target.column},
            "every row needs a label",
        ),
        Expectation(
            "expect_column_distinct_values_to_contain_set",
            {"column": target.column, "value_set": [target.positive]},
            "the favourable label named in the spec must occur",
        ),
    ]
    if target.classes:
        found.append(
            Expectation(
                "expect_column_values_to_be_in_set",
                {"column": target.column, "value_set": list(target.classes)},
                "labels must be among target.classes of the spec",
            )
        )
    return found


def _feature_expectations(column: str, column_spec: ColumnSpec) -> list[Expectation]:
    found: list[Expectation] = []
    if column_spec.nullable is False:
        found.append(
            Expectation(
                "expect_column_values_to_not_be_null",
                {"column": column},
                "nullable: false in the spec",
            )
        )
    bounded = column_spec.min is not None or column_spec.max is not None
    if column_spec.type in NUMERIC_TYPES and bounded:
        found.append(
            Expectation(
                "expect_column_values_to_be_between",
                {"column": column, "min_value": column_spec.min, "max_value": column_spec.max},
                "min/max of the spec",
            )
        )
    return found


def named_columns(spec: DatasetSpec) -> list[str]:
    split = [spec.split_column] if spec.split_column else []
    return list(dict.fromkeys([spec.target.column, *spec.sensitive_columns, *split, *spec.columns]))


def run_suite(frame: pl.DataFrame, suite: gx.ExpectationSuite) -> dict[str, Any]:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = _gx().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("input").add_dataframe_asset("table")
    batch = asset.add_batch_definition_whole_dataframe("whole table").get_batch(
        batch_parameters={"dataframe": frame.to_pandas()}
    )
    return batch.validate(suite, result_format="SUMMARY").to_json_dict()


def gx_frame(
    frame: pl.DataFrame, spec: DatasetSpec, text_examples: dict[str, tuple[int, list[str]]]
) -> pl.DataFrame:
    """The frame as GX sees it: labels as strings, numbers written as text parsed."""
    # Spec values (positive label, classes) are strings; 0/1 labels must compare as "0"/"1".
    labels = [spec.target.column, *spec.sensitive_columns]
    casts = [pl.col(labels).cast(pl.String)]
    for name in spec.feature_columns:
        dtype = frame.schema[name]
        numeric_as_text = not dtype.is_numeric() and dtype != pl.Null
        if (
            spec.columns[name].type in NUMERIC_TYPES
            and numeric_as_text
            and name not in text_examples
        ):
            casts.append(pl.col(name).cast(pl.String).cast(pl.Float64))
    return frame.with_columns(casts)


def gx_statistics(gx_result: dict[str, Any]) -> dict[str, Any]:
    stats = gx_result.get("statistics", {})
    return {
        "gx_evaluated_expectations": stats.get("evaluated_expectations"),
        "gx_successful_expectations": stats.get("successful_expectations"),
    }


def gx_failures(gx_result: dict[str, Any]) -> list[ValidationFailure]:
    return [_gx_failure(result) for result in gx_result.get("results", []) if not result["success"]]


def _gx_failure(result: dict[str, Any]) -> ValidationFailure:
    config = result["expectation_config"]
    if "constraint" in (config.get("meta") or {}):
        return _constraint_failure(config["meta"], result.get("result") or {})
    check, kwargs = config["type"], config["kwargs"]
    column = kwargs.get("column")
    outcome = result.get("result") or {}
    count = outcome.get("unexpected_count")
    examples = [str(item["value"]) for item in outcome.get("partial_unexpected_counts", [])]
    exception = (result.get("exception_info") or {}).get("exception_message")
    if exception:
        message = f"{check} could not be evaluated on '{column}': {exception.splitlines()[0]}"
    else:
        message = expectation_message(check, column, kwargs, outcome)
    if check == "expect_column_values_to_not_be_null":
        # Every offending value is null: where they are says more.
        examples = [f"row {index}" for index in outcome.get("partial_unexpected_index_list", [])]
    return ValidationFailure(
        check=check,
        column=column,
        unexpected_count=count,
        examples=examples[:MAX_EXAMPLES],
        message=message,
    )


def _constraint_failure(meta: dict[str, Any], outcome: dict[str, Any]) -> ValidationFailure:
    count = outcome.get("unexpected_count")
    rows = outcome.get("partial_unexpected_index_list") or []
    values = outcome.get("partial_unexpected_list") or []
    examples = [f"row {row} ({value})" for row, value in zip(rows, values, strict=False)]
    return ValidationFailure(
        check=CHECK_SPEC_CONSTRAINT,
        column=", ".join(meta.get("columns") or []) or None,
        unexpected_count=count,
        examples=examples[:MAX_EXAMPLES],
        message=f"{rows_text(count)} {'breaks' if count == 1 else 'break'} the constraint "
        f"'{meta['constraint']}'",
    )


def expectation_message(check: str, column: str | None, kwargs: dict, outcome: dict) -> str:
    count = outcome.get("unexpected_count")
    if check == "expect_table_row_count_to_be_between":
        return (
            f"the table has {outcome.get('observed_value')} rows; the spec asks for at least "
            f"{kwargs.get('min_value')}"
        )
    if check == "expect_column_to_exist":
        return f"column '{column}', named in the spec, is not in the data"
    if check == "expect_column_values_to_not_be_null":
        return f"column '{column}' must be complete but has missing values in {rows_text(count)}"
    if check == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return (
            f"column '{column}' has values outside "
            f"[{'-inf' if low is None else low}, {'inf' if high is None else high}] "
            f"in {rows_text(count)}"
        )
    if check == "expect_column_values_to_be_in_set":
        return (
            f"column '{column}' has values outside {kwargs.get('value_set')} in {rows_text(count)}"
        )
    if check == "expect_column_distinct_values_to_contain_set":
        return f"column '{column}' never holds {kwargs.get('value_set')}"
    return f"{check} failed on column '{column}'"


def missing_columns_report(
    frame: pl.DataFrame, spec: DatasetSpec, source: str, started: float
) -> ValidationReport:
    """Columns the spec names are absent: only the table-level checks can run."""
    E = _gx().expectations
    suite = _gx().ExpectationSuite(
        name=f"fairdistill.{spec.name}",
        expectations=[
            E.ExpectTableRowCountToBeBetween(min_value=spec.min_rows),
            *(E.ExpectColumnToExist(column=column) for column in named_columns(spec)),
        ],
    )
    gx_result = run_suite(frame, suite)
    failures = gx_failures(gx_result)
    statistics = {
        "source": source,
        "rows": frame.height,
        "columns": frame.width,
        "seconds": round(time.perf_counter() - started, 3),
        **gx_statistics(gx_result),
        "failed_checks": len(failures),
    }
    return ValidationReport(False, failures, statistics, gx_result, suite.to_json_dict())
