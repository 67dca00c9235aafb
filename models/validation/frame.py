"""Validate an input table against its spec before anything learns from it.

Both kinds of checks run and are reported together: the Great Expectations suite
(:mod:`.suite`) and fairdistill's own (:mod:`.checks`). Pure logic: the Prefect task that
records the report is ``tasks/validate.py``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from fairdistill.models.spec import DatasetSpec, complete_spec
from fairdistill.models.validation.checks import (
    all_null_failures,
    group_checks,
    nan_as_null,
    non_finite_failures,
    numeric_text,
    numeric_text_failures,
    target_class_failures,
    untyped_mixed_failures,
    without_numeric_checks,
)
from fairdistill.models.validation.polars_suite import evaluate_expectations
from fairdistill.models.validation.report import (
    ValidationFailure,
    ValidationReport,
    distinct_examples,
)
from fairdistill.models.validation.suite import (
    build_expectation_suite,
    declared_expectations,
    gx_failures,
    gx_frame,
    gx_statistics,
    missing_columns_report,
    named_columns,
    run_suite,
    with_constraint_columns,
)


@dataclass(frozen=True)
class CheckedTable:
    """The input's spec completed from the data, and what the validation suite found."""

    spec: DatasetSpec
    report: ValidationReport


def check_table(frame: pl.DataFrame, spec: DatasetSpec, *, source: str) -> CheckedTable:
    """Complete ``spec`` from ``frame`` and run the validation suite on it (never raises
    for a failed check: the caller records the report first, then refuses the data)."""
    completed = complete_spec(spec, frame, source=source)
    return CheckedTable(spec=completed, report=validate_frame(frame, spec, source=source))


def quick_check_failures(
    frame: pl.DataFrame, spec: DatasetSpec, source: str
) -> list[ValidationFailure]:
    """The failures :func:`validate_frame` reports, in its order, found without Great
    Expectations: fairdistill's own checks, then the suite's expectations evaluated with
    polars (:mod:`.polars_suite`). Raises :class:`~fairdistill.models.errors.SpecError`
    when the spec names a column the data lacks."""
    prepared = _prepare(frame, spec, source)
    own = _own_failures(frame, spec, prepared)[0]
    declared = evaluate_expectations(prepared.checked, declared_expectations(prepared.gx_spec))
    return [*own, *_suite_failures(declared, prepared.checked)]


def validate_frame(frame: pl.DataFrame, spec: DatasetSpec, source: str) -> ValidationReport:
    """Run the GX suite and the fairdistill checks of ``spec`` on ``frame``.

    What the spec leaves out is completed from the data first, so only what the spec
    declares (nullability, bounds, classes, group sizes) can fail.
    """
    started = time.perf_counter()
    missing = [column for column in named_columns(spec) if column not in frame.columns]
    if missing:
        return missing_columns_report(frame, spec, source, started)
    prepared = _prepare(frame, spec, source)
    completed = prepared.completed
    suite = build_expectation_suite(prepared.gx_spec, name=f"fairdistill.{spec.name}")
    gx_result = run_suite(prepared.checked, suite)
    own, group_statistics = _own_failures(frame, spec, prepared)
    # fairdistill's own checks first: the command line refuses on them before the suite
    # runs, and names the same first failure as a full validation would.
    failures = [*own, *_suite_failures(gx_result, prepared.checked)]
    statistics = {
        "source": source,
        "rows": frame.height,
        "columns": frame.width,
        "seconds": round(time.perf_counter() - started, 3),
        **gx_statistics(gx_result),
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
        warnings=column_warnings(prepared.as_null, completed),
    )


def _suite_failures(result: dict[str, Any], checked: pl.DataFrame) -> list[ValidationFailure]:
    """The failures of a suite result, GX's or the polars evaluation's.

    A missing value the spec names (the positive label) is shown beside the values the
    column does hold, most frequent first: GX reports only what is missing, and '>50k'
    against '>50K' is the usual cause."""
    return [
        dataclasses.replace(
            failure,
            examples=distinct_examples(checked.get_column(failure.column).drop_nulls()),
        )
        if failure.check == "expect_column_distinct_values_to_contain_set"
        and failure.column in checked.columns
        else failure
        for failure in gx_failures(result)
    ]


@dataclass(frozen=True)
class _Prepared:
    # NaN as null: NaN counts as missing when inferring the spec (and is reported as
    # non-finite instead).
    as_null: pl.DataFrame
    completed: DatasetSpec
    # Numeric-declared columns holding text: (rows, examples); their range checks are off.
    text_examples: dict[str, tuple[int, list[str]]]
    gx_spec: DatasetSpec
    # The frame as the suite sees it, with the constraints' computed columns.
    checked: pl.DataFrame


def _prepare(frame: pl.DataFrame, spec: DatasetSpec, source: str) -> _Prepared:
    as_null = nan_as_null(frame)
    completed = complete_spec(spec, as_null, source=source)
    text_examples = numeric_text(frame, completed)
    gx_spec = without_numeric_checks(completed, text_examples)
    checked = with_constraint_columns(gx_frame(frame, completed, text_examples), gx_spec)
    return _Prepared(as_null, completed, text_examples, gx_spec, checked)


def _own_failures(
    frame: pl.DataFrame, given: DatasetSpec, prepared: _Prepared
) -> tuple[list[ValidationFailure], dict[str, object]]:
    completed = prepared.completed
    group_failures, group_statistics = group_checks(frame, completed)
    failures = [
        *numeric_text_failures(prepared.text_examples),
        *untyped_mixed_failures(frame, given, completed),
        *all_null_failures(prepared.as_null, completed),
        *non_finite_failures(frame, completed),
        *target_class_failures(frame, completed),
        *group_failures,
    ]
    return failures, group_statistics


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
