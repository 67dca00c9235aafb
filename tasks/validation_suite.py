"""Validate an input table against its spec before anything learns from it.

Two kinds of checks, reported together:

- a Great Expectations suite built from the spec (columns exist, row count, nulls, target
  values, numeric ranges), run on an ephemeral context, its result kept as JSON for audit;
- fairdistill checks that GX cannot express well (their names start with ``fairdistill.``):
  numeric columns holding text, all-null columns, NaN/inf values, a target with other than
  two classes, sensitive attributes with one group, and groups or (group, label) cells too
  small for fairness measures to mean anything.

This module is pure logic: the Prefect task that records the report lives beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import great_expectations as gx
import polars as pl
from great_expectations.data_context.types.base import ProgressBarsConfig

from fairdistill.models.errors import DataValidationError
from fairdistill.models.spec import SPLIT_TEST, SPLIT_TRAIN, ColumnSpec, DatasetSpec, complete_spec

FAIRDISTILL_CHECK_PREFIX = "fairdistill."
CHECK_NUMERIC_TEXT = f"{FAIRDISTILL_CHECK_PREFIX}numeric_column_holds_text"
CHECK_ALL_NULL = f"{FAIRDISTILL_CHECK_PREFIX}column_all_null"
CHECK_NON_FINITE = f"{FAIRDISTILL_CHECK_PREFIX}numeric_values_finite"
CHECK_TARGET_CLASSES = f"{FAIRDISTILL_CHECK_PREFIX}target_two_classes"
CHECK_SENSITIVE_GROUPS = f"{FAIRDISTILL_CHECK_PREFIX}sensitive_two_groups"
CHECK_GROUP_ROWS = f"{FAIRDISTILL_CHECK_PREFIX}min_group_rows"
CHECK_CELL_ROWS = f"{FAIRDISTILL_CHECK_PREFIX}min_group_label_rows"

MAX_EXAMPLES = 5
NUMERIC_TYPES = ("integer", "continuous")

HINTS: dict[str, str] = {
    "expect_column_to_exist": "fix the column name in the spec or in the data header",
    "expect_table_row_count_to_be_between": "supply more rows or lower min_rows in the spec",
    "expect_column_values_to_not_be_null": "fill or drop the missing values, or declare the "
    "column nullable: true in the spec",
    "expect_column_values_to_be_between": "fix the values or widen min/max in the spec",
    "expect_column_values_to_be_in_set": "map the labels onto the spec's target classes",
    "expect_column_distinct_values_to_contain_set": "check target.positive in the spec "
    "against the labels the data uses",
    CHECK_NUMERIC_TEXT: "remove the text values, write missing values as empty fields, or "
    "declare the column categorical in the spec",
    CHECK_ALL_NULL: "drop the column or give it role: ignore in the spec",
    CHECK_NON_FINITE: "replace NaN and infinite values by real values or empty fields",
    CHECK_TARGET_CLASSES: "the target must hold exactly two labels: merge or filter the "
    "labels, or pick another target column",
    CHECK_SENSITIVE_GROUPS: "check the privileged values in the spec against the values the "
    "data uses; fairness needs rows in and outside the privileged group",
    CHECK_GROUP_ROWS: "supply more rows of the small group, or lower min_group_rows in the spec",
    CHECK_CELL_ROWS: "supply more rows of the small group and label, or lower min_group_rows "
    "in the spec",
}
DEFAULT_HINT = "fix the data or the spec; the validation report lists every failed check"


@dataclass
class ValidationFailure:
    check: str
    column: str | None
    unexpected_count: int | None
    examples: list[str]
    message: str


@dataclass
class ValidationReport:
    success: bool
    failures: list[ValidationFailure]
    statistics: dict[str, Any]
    gx_result: dict[str, Any] = field(repr=False)
    suite: dict[str, Any] = field(repr=False)
    # What passes but deserves a look: columns left out of the model, constant columns.
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- the GX suite


def build_expectation_suite(spec: DatasetSpec, name: str) -> gx.ExpectationSuite:
    """The GX suite of a completed spec (every column typed, see ``complete_spec``)."""
    E = gx.expectations
    expectations: list[Any] = [
        E.ExpectTableRowCountToBeBetween(
            min_value=spec.min_rows, notes=f"min_rows: {spec.min_rows} in the spec"
        )
    ]
    for column in _named_columns(spec):
        expectations.append(E.ExpectColumnToExist(column=column))
    expectations += _target_expectations(spec)
    for column in spec.sensitive_columns:
        expectations.append(
            E.ExpectColumnValuesToNotBeNull(
                column=column, notes="a sensitive attribute must be known for every row"
            )
        )
    if spec.split_column:
        expectations.append(
            E.ExpectColumnValuesToBeInSet(
                column=spec.split_column,
                value_set=[SPLIT_TRAIN, SPLIT_TEST],
                notes="split_column of the spec: every row is in the train or the test part",
            )
        )
    for column, column_spec in spec.columns.items():
        if column_spec.role == "feature":
            expectations += _feature_expectations(column, column_spec)
    return gx.ExpectationSuite(name=name, expectations=expectations)


def _target_expectations(spec: DatasetSpec) -> list[Any]:
    E = gx.expectations
    target = spec.target
    found = [
        E.ExpectColumnValuesToNotBeNull(column=target.column, notes="every row needs a label"),
        E.ExpectColumnDistinctValuesToContainSet(
            column=target.column,
            value_set=[target.positive],
            notes="the favourable label named in the spec must occur",
        ),
    ]
    if target.classes:
        found.append(
            E.ExpectColumnValuesToBeInSet(
                column=target.column,
                value_set=list(target.classes),
                notes="labels must be among target.classes of the spec",
            )
        )
    return found


def _feature_expectations(column: str, column_spec: ColumnSpec) -> list[Any]:
    E = gx.expectations
    found: list[Any] = []
    if column_spec.nullable is False:
        found.append(
            E.ExpectColumnValuesToNotBeNull(column=column, notes="nullable: false in the spec")
        )
    bounded = column_spec.min is not None or column_spec.max is not None
    if column_spec.type in NUMERIC_TYPES and bounded:
        found.append(
            E.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=column_spec.min,
                max_value=column_spec.max,
                notes="min/max of the spec",
            )
        )
    return found


def _named_columns(spec: DatasetSpec) -> list[str]:
    split = [spec.split_column] if spec.split_column else []
    return list(dict.fromkeys([spec.target.column, *spec.sensitive_columns, *split, *spec.columns]))


def _run_suite(frame: pl.DataFrame, suite: gx.ExpectationSuite) -> dict[str, Any]:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("input").add_dataframe_asset("table")
    batch = asset.add_batch_definition_whole_dataframe("whole table").get_batch(
        batch_parameters={"dataframe": frame.to_pandas()}
    )
    return batch.validate(suite, result_format="SUMMARY").to_json_dict()


# ---------------------------------------------------------------- validate


def validate_frame(frame: pl.DataFrame, spec: DatasetSpec, source: str) -> ValidationReport:
    """Run the GX suite and the fairdistill checks of ``spec`` on ``frame``.

    What the spec leaves out is completed from the data first, so only what the spec
    declares (nullability, bounds, classes, group sizes) can fail.
    """
    started = time.perf_counter()
    missing = [column for column in _named_columns(spec) if column not in frame.columns]
    if missing:
        return _missing_columns_report(frame, spec, source, started)
    # NaN counts as missing when inferring the spec: it is reported as non-finite instead.
    as_null = _nan_as_null(frame)
    completed = complete_spec(spec, as_null, source=source)
    text_examples = _numeric_text(frame, completed)
    gx_spec = _without_numeric_checks(completed, text_examples)
    suite = build_expectation_suite(gx_spec, name=f"fairdistill.{spec.name}")
    gx_result = _run_suite(_gx_frame(frame, completed, text_examples), suite)
    failures = [
        *_numeric_text_failures(text_examples),
        *_all_null_failures(as_null, completed),
        *_non_finite_failures(frame, completed),
        *_gx_failures(gx_result),
        *_target_class_failures(frame, spec),
    ]
    group_failures, group_statistics = _group_checks(frame, spec)
    failures += group_failures
    statistics = {
        "source": source,
        "rows": frame.height,
        "columns": frame.width,
        "seconds": round(time.perf_counter() - started, 3),
        **_gx_statistics(gx_result),
        "failed_checks": len(failures),
        "ignored_columns": completed.ignored_columns,
        **group_statistics,
    }
    return ValidationReport(
        success=not failures,
        failures=failures,
        statistics=statistics,
        gx_result=gx_result,
        suite=suite.to_json_dict(),
        warnings=column_warnings(as_null, completed),
    )


def column_warnings(frame: pl.DataFrame, completed: DatasetSpec) -> list[str]:
    """Columns left out for a reason inferred from the data, and features with one value."""
    found = [
        f"column '{name}' is left out of the model and of the synthetic data: "
        f"{completed.columns[name].reason} (give it a role in the spec to decide otherwise)"
        for name in completed.ignored_columns
        if completed.columns[name].reason
    ]
    for name in completed.feature_columns:
        values = frame.get_column(name).drop_nulls()
        if frame.height > 1 and values.n_unique() == 1:
            found.append(
                f"column '{name}' holds the same value ({values[0]!r}) in every row: it "
                "teaches the model nothing and is reproduced as that value"
            )
    return found


def _missing_columns_report(
    frame: pl.DataFrame, spec: DatasetSpec, source: str, started: float
) -> ValidationReport:
    """Columns the spec names are absent: only the table-level checks can run."""
    E = gx.expectations
    suite = gx.ExpectationSuite(
        name=f"fairdistill.{spec.name}",
        expectations=[
            E.ExpectTableRowCountToBeBetween(min_value=spec.min_rows),
            *(E.ExpectColumnToExist(column=column) for column in _named_columns(spec)),
        ],
    )
    gx_result = _run_suite(frame, suite)
    failures = _gx_failures(gx_result)
    statistics = {
        "source": source,
        "rows": frame.height,
        "columns": frame.width,
        "seconds": round(time.perf_counter() - started, 3),
        **_gx_statistics(gx_result),
        "failed_checks": len(failures),
    }
    return ValidationReport(False, failures, statistics, gx_result, suite.to_json_dict())


def _nan_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def _gx_frame(
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


def _gx_statistics(gx_result: dict[str, Any]) -> dict[str, Any]:
    stats = gx_result.get("statistics", {})
    return {
        "gx_evaluated_expectations": stats.get("evaluated_expectations"),
        "gx_successful_expectations": stats.get("successful_expectations"),
    }


# ---------------------------------------------------------------- column checks


def _numeric_text(frame: pl.DataFrame, spec: DatasetSpec) -> dict[str, tuple[int, list[str]]]:
    """Per numeric-declared column stored as text: (rows that are not numbers, examples)."""
    found: dict[str, tuple[int, list[str]]] = {}
    for name in spec.feature_columns:
        column_spec, dtype = spec.columns[name], frame.schema[name]
        if column_spec.type not in NUMERIC_TYPES or dtype.is_numeric() or dtype == pl.Null:
            continue
        text = frame.get_column(name).cast(pl.String)
        not_numbers = text.filter(
            text.is_not_null() & text.cast(pl.Float64, strict=False).is_null()
        )
        if not_numbers.len():
            found[name] = (not_numbers.len(), _examples(not_numbers))
    return found


def _without_numeric_checks(
    spec: DatasetSpec, text_examples: dict[str, tuple[int, list[str]]]
) -> DatasetSpec:
    """Range checks on text columns would only repeat the text failure as a GX error."""
    columns = dict(spec.columns)
    for name in text_examples:
        columns[name] = columns[name].model_copy(
            update={"type": "categorical", "min": None, "max": None}
        )
    return spec.model_copy(update={"columns": columns})


def _numeric_text_failures(
    text_examples: dict[str, tuple[int, list[str]]],
) -> list[ValidationFailure]:
    return [
        ValidationFailure(
            check=CHECK_NUMERIC_TEXT,
            column=name,
            unexpected_count=count,
            examples=examples,
            message=f"column '{name}' is declared numeric but holds text in {_rows(count)}",
        )
        for name, (count, examples) in text_examples.items()
    ]


def _all_null_failures(as_null: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
    if as_null.height == 0:
        return []
    used = [spec.target.column, *spec.sensitive_columns, *spec.feature_columns]
    return [
        ValidationFailure(
            check=CHECK_ALL_NULL,
            column=name,
            unexpected_count=as_null.height,
            examples=[],
            message=f"column '{name}' is empty: all {as_null.height} values are missing",
        )
        for name in used
        if as_null.get_column(name).null_count() == as_null.height
    ]


def _non_finite_failures(frame: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
    failures = []
    for name in [*spec.feature_columns, spec.target.column, *spec.sensitive_columns]:
        series = frame.get_column(name)
        if not series.dtype.is_float():
            continue
        bad = series.filter(~series.is_finite())
        if bad.len():
            failures.append(
                ValidationFailure(
                    check=CHECK_NON_FINITE,
                    column=name,
                    unexpected_count=bad.len(),
                    examples=_examples(bad),
                    message=f"column '{name}' holds NaN or infinity in {_rows(bad.len())}",
                )
            )
    return failures


def _rows(count: int | None) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def _examples(series: pl.Series) -> list[str]:
    """A few distinct offending values, most frequent first, as text."""
    counts = series.value_counts(sort=True, name="rows").head(MAX_EXAMPLES)
    return [str(value) for value in counts.get_column(series.name).to_list()]


# ---------------------------------------------------------------- GX result → failures


def _gx_failures(gx_result: dict[str, Any]) -> list[ValidationFailure]:
    return [_gx_failure(result) for result in gx_result.get("results", []) if not result["success"]]


def _gx_failure(result: dict[str, Any]) -> ValidationFailure:
    config = result["expectation_config"]
    check, kwargs = config["type"], config["kwargs"]
    column = kwargs.get("column")
    outcome = result.get("result") or {}
    count = outcome.get("unexpected_count")
    examples = [str(item["value"]) for item in outcome.get("partial_unexpected_counts", [])]
    exception = (result.get("exception_info") or {}).get("exception_message")
    if exception:
        message = f"{check} could not be evaluated on '{column}': {exception.splitlines()[0]}"
    else:
        message = _gx_message(check, column, kwargs, outcome)
    if check == "expect_column_distinct_values_to_contain_set":
        examples = [str(value) for value in outcome.get("observed_value") or []]
    elif check == "expect_column_values_to_not_be_null":
        # Every offending value is null: where they are says more.
        examples = [f"row {index}" for index in outcome.get("partial_unexpected_index_list", [])]
    return ValidationFailure(
        check=check,
        column=column,
        unexpected_count=count,
        examples=examples[:MAX_EXAMPLES],
        message=message,
    )


def _gx_message(check: str, column: str | None, kwargs: dict, outcome: dict) -> str:
    count = outcome.get("unexpected_count")
    if check == "expect_table_row_count_to_be_between":
        return (
            f"the table has {outcome.get('observed_value')} rows; the spec asks for at least "
            f"{kwargs.get('min_value')}"
        )
    if check == "expect_column_to_exist":
        return f"column '{column}', named in the spec, is not in the data"
    if check == "expect_column_values_to_not_be_null":
        return f"column '{column}' must be complete but has missing values in {_rows(count)}"
    if check == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return (
            f"column '{column}' has values outside "
            f"[{'-inf' if low is None else low}, {'inf' if high is None else high}] "
            f"in {_rows(count)}"
        )
    if check == "expect_column_values_to_be_in_set":
        return f"column '{column}' has values outside {kwargs.get('value_set')} in {_rows(count)}"
    if check == "expect_column_distinct_values_to_contain_set":
        return f"column '{column}' never holds {kwargs.get('value_set')}"
    return f"{check} failed on column '{column}'"


# ---------------------------------------------------------------- target and groups


def _target_class_failures(frame: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
    column = spec.target.column
    labels = frame.get_column(column).cast(pl.String).drop_nulls()
    counts = labels.value_counts(sort=True, name="rows")
    if counts.height == 2:
        return []
    examples = [f"{value} ({rows} rows)" for value, rows in counts.rows()][:MAX_EXAMPLES]
    return [
        ValidationFailure(
            check=CHECK_TARGET_CLASSES,
            column=column,
            unexpected_count=None,
            examples=examples,
            message=f"target '{column}' has {counts.height} distinct labels; a binary target "
            "needs exactly 2",
        )
    ]


def _group_checks(
    frame: pl.DataFrame, spec: DatasetSpec
) -> tuple[list[ValidationFailure], dict[str, Any]]:
    """Sizes of the privileged/unprivileged groups and of their (group, label) cells."""
    failures: list[ValidationFailure] = []
    group_counts: dict[str, dict[str, int]] = {}
    cell_counts: dict[str, dict[str, int]] = {}
    target = frame.get_column(spec.target.column).cast(pl.String)
    membership = _group_membership(frame, spec)
    for key, group_expression in _groupings(spec):
        groups = membership.select(group_expression).to_series()
        sizes = _rows_per_group(groups)
        cells = _rows_per_cell(groups, target, spec.target.column)
        group_counts[key], cell_counts[key] = sizes, cells
        if failure := _two_groups_failure(key, sizes, frame, spec):
            failures.append(failure)
        elif small_groups := _too_small(sizes, spec.min_group_rows):
            failures.append(_small_failure(CHECK_GROUP_ROWS, key, small_groups, spec))
        elif small_cells := _too_small(cells, spec.min_group_rows):
            failures.append(_small_failure(CHECK_CELL_ROWS, key, small_cells, spec))
    statistics = {
        "target_counts": _value_counts(target),
        "sensitive_value_counts": {
            column: _value_counts(frame.get_column(column).cast(pl.String))
            for column in spec.sensitive_columns
        },
        "group_counts": group_counts,
        "group_label_counts": cell_counts,
    }
    return failures, statistics


def _group_membership(frame: pl.DataFrame, spec: DatasetSpec) -> pl.DataFrame:
    """Per attribute: 'privileged' / 'unprivileged' per row (null where the value is null)."""
    return frame.select(
        pl.when(pl.col(attribute.column).is_null())
        .then(None)
        .when(pl.col(attribute.column).cast(pl.String).is_in(list(attribute.privileged)))
        .then(pl.lit("privileged"))
        .otherwise(pl.lit("unprivileged"))
        .alias(attribute.column)
        for attribute in spec.sensitive
    )


def _groupings(spec: DatasetSpec) -> Iterable[tuple[str, pl.Expr]]:
    """Each attribute alone, then their intersection when there are several."""
    columns = spec.sensitive_columns
    for column in columns:
        yield column, pl.col(column)
    if len(columns) > 1:
        parts = [pl.concat_str(pl.lit(f"{column}="), pl.col(column)) for column in columns]
        yield " & ".join(columns), pl.concat_str(parts, separator=" & ").alias("intersection")


def _value_counts(series: pl.Series) -> dict[str, int]:
    counts = series.drop_nulls().value_counts(sort=True, name="rows")
    return {str(value): rows for value, rows in counts.rows()}


def _rows_per_group(groups: pl.Series) -> dict[str, int]:
    return dict(sorted(_value_counts(groups).items()))


def _rows_per_cell(groups: pl.Series, target: pl.Series, target_name: str) -> dict[str, int]:
    """Rows per (group, label), zeros included for combinations that never occur."""
    pairs = pl.DataFrame({"group": groups, "label": target}).drop_nulls()
    observed = {
        (g, label): rows for g, label, rows in pairs.group_by("group", "label").len().rows()
    }
    return {
        f"{group}, {target_name}={label}": observed.get((group, label), 0)
        for group in sorted(pairs.get_column("group").unique().to_list())
        for label in sorted(pairs.get_column("label").unique().to_list())
    }


def _two_groups_failure(
    key: str, sizes: dict[str, int], frame: pl.DataFrame, spec: DatasetSpec
) -> ValidationFailure | None:
    if key not in spec.sensitive_columns:
        return None  # an intersection is only as complete as the attributes it crosses
    if sizes.get("privileged", 0) and sizes.get("unprivileged", 0):
        return None
    attribute = next(a for a in spec.sensitive if a.column == key)
    absent = "unprivileged" if sizes.get("privileged", 0) else "privileged"
    return ValidationFailure(
        check=CHECK_SENSITIVE_GROUPS,
        column=key,
        unexpected_count=None,
        examples=_examples(frame.get_column(key).cast(pl.String).drop_nulls()),
        message=f"sensitive attribute '{key}' has no {absent} rows (privileged values: "
        f"{list(attribute.privileged)}; every other value is unprivileged)",
    )


def _too_small(counts: dict[str, int], minimum: int) -> dict[str, int]:
    """The groups under ``minimum`` rows, smallest first."""
    ordered = sorted(counts.items(), key=lambda item: (item[1], item[0]))
    return {name: rows for name, rows in ordered if rows < minimum}


def _small_failure(
    check: str, key: str, small: dict[str, int], spec: DatasetSpec
) -> ValidationFailure:
    what = "group" if check == CHECK_GROUP_ROWS else "(group, label) cell"
    smallest_name, smallest_rows = next(iter(small.items()))
    return ValidationFailure(
        check=check,
        column=key,
        unexpected_count=smallest_rows,
        examples=[f"{name}: {rows} rows" for name, rows in small.items()][:MAX_EXAMPLES],
        message=f"{len(small)} {what}(s) of '{key}' have fewer than min_group_rows="
        f"{spec.min_group_rows} rows (smallest: {smallest_name}, {smallest_rows} rows)",
    )


# ---------------------------------------------------------------- reporting


def report_to_markdown(report: ValidationReport) -> str:
    stats = report.statistics
    title = "passed" if report.success else "FAILED"
    lines = [
        f"## Data validation {title}",
        "",
        f"Rows: {stats.get('rows')}, columns: {stats.get('columns')}. Great Expectations: "
        f"{stats.get('gx_successful_expectations')} of {stats.get('gx_evaluated_expectations')} "
        "expectations met. Checks named `fairdistill.*` are computed by fairdistill.",
        "",
    ]
    if report.warnings:
        lines += ["Warnings:", *(f"- {warning}" for warning in report.warnings), ""]
    if report.success:
        return "\n".join([*lines, "Every check passed."]) + "\n"
    lines += ["| check | column | count | examples | problem |", "|---|---|---|---|---|"]
    for failure in report.failures:
        cells = [
            failure.check,
            failure.column or "",
            "" if failure.unexpected_count is None else str(failure.unexpected_count),
            ", ".join(failure.examples),
            failure.message,
        ]
        lines.append("| " + " | ".join(_escape_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def raise_for_failures(report: ValidationReport, source: str) -> None:
    """Raise one :class:`DataValidationError` naming the first failed check, if any."""
    if report.success:
        return
    first = report.failures[0]
    examples = f" (e.g. {', '.join(first.examples[:3])})" if first.examples else ""
    more = len(report.failures) - 1
    others = f"; {more} more check{'s' if more != 1 else ''} failed" if more else ""
    raise DataValidationError(
        f"The data failed validation: {first.message}{examples}{others}",
        file=source,
        column=first.column,
        rule=first.check,
        hint=HINTS.get(first.check, DEFAULT_HINT),
    )
