"""The validation suite's expectations evaluated with polars alone, for a quick refusal.

Importing Great Expectations costs about 3 s of CPU on two cores, more than the whole
refusal of a bad file may take. The command line therefore checks what the spec declares
(:func:`~fairdistill.models.validation.suite.declared_expectations`, the same list the GX
suite is built from) with the functions below, on the frame GX would see, and answers in
GX's result format so that one function (``gx_failures``) writes the failures of both. The
validate stage still runs the GX suite itself: it is the record, and tests hold the two
evaluations to the same failures, counts and examples.

Semantics follow GX's pandas engine: a missing value (null, or NaN in a float column) is
what ``not_be_null`` counts and every other expectation skips, and examples are taken from
the first ``PARTIAL_ROWS`` offending rows, as GX's SUMMARY result does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl

from fairdistill.models.validation.checks import nan_as_null
from fairdistill.models.validation.suite import Expectation

# Offending rows a result describes (GX's partial_unexpected_count for SUMMARY).
PARTIAL_ROWS = 20

ColumnResult = dict[str, Any]


def evaluate_expectations(frame: pl.DataFrame, expectations: list[Expectation]) -> dict[str, Any]:
    """The result GX's ``validate(..., result_format="SUMMARY").to_json_dict()`` gives for
    these expectations, as far as :func:`~.suite.gx_failures` and ``gx_statistics`` read it."""
    missing_as_null = nan_as_null(frame)
    results = [_result(missing_as_null, item) for item in expectations]
    successful = sum(result["success"] for result in results)
    return {
        "success": successful == len(results),
        "results": results,
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
        },
    }


def _result(frame: pl.DataFrame, expectation: Expectation) -> dict[str, Any]:
    config = {"type": expectation.type, "kwargs": expectation.kwargs, "meta": expectation.meta}
    if expectation.type == "expect_table_row_count_to_be_between":
        outcome = _row_count(frame, **expectation.kwargs)
    elif expectation.type == "expect_column_to_exist":
        outcome = {"success": expectation.kwargs["column"] in frame.columns}
    else:
        column = expectation.kwargs["column"]
        if column not in frame.columns:
            return {"success": False, "expectation_config": config, "result": {}}
        arguments = {key: value for key, value in expectation.kwargs.items() if key != "column"}
        outcome = _COLUMN_CHECKS[expectation.type](frame.get_column(column), **arguments)
    success = outcome.pop("success")
    return {"success": success, "expectation_config": config, "result": outcome}


def _row_count(
    frame: pl.DataFrame, min_value: int | None = None, max_value: int | None = None
) -> ColumnResult:
    rows = frame.height
    low_ok = min_value is None or rows >= min_value
    high_ok = max_value is None or rows <= max_value
    return {"success": low_ok and high_ok, "observed_value": rows}


def _not_null(series: pl.Series) -> ColumnResult:
    return _offending(series, series.is_null(), values=False)


def _null(series: pl.Series) -> ColumnResult:
    return _offending(series, series.is_not_null(), values=True)


def _between(
    series: pl.Series, min_value: float | None = None, max_value: float | None = None
) -> ColumnResult:
    outside = pl.Series([False] * series.len())
    if min_value is not None:
        outside = outside | (series < min_value).fill_null(False)
    if max_value is not None:
        outside = outside | (series > max_value).fill_null(False)
    return _offending(series, outside, values=True)


def _in_set(series: pl.Series, value_set: list[Any]) -> ColumnResult:
    # Compared as Python values, as GX's pandas engine does: polars refuses to look for
    # text in a numeric column, and 0 is not "0" to either.
    allowed = set(value_set)
    outside = pl.Series(
        [value is not None and value not in allowed for value in series.to_list()],
        dtype=pl.Boolean,
    )
    return _offending(series, outside, values=True)


def _contains_set(series: pl.Series, value_set: list[Any]) -> ColumnResult:
    # GX reports the values of the set the column lacks, not the ones it holds.
    present = set(series.drop_nulls().unique().to_list())
    missing = [value for value in value_set if value not in present]
    return {
        "success": not missing,
        "observed_value": None,
        "missing_count": len(missing),
        "partial_missing_list": missing,
    }


def _offending(series: pl.Series, offending: pl.Series, *, values: bool) -> ColumnResult:
    """GX's SUMMARY description of the offending rows: their count, the first rows' index
    and values, and how often each of those values occurs among them."""
    rows = offending.arg_true()
    first = rows.head(PARTIAL_ROWS).to_list()
    outcome: ColumnResult = {
        "success": rows.len() == 0,
        "unexpected_count": rows.len(),
        "partial_unexpected_index_list": first,
    }
    if values:
        listed = series.gather(first).to_list()
        counts = Counter(listed)
        outcome["partial_unexpected_list"] = listed
        outcome["partial_unexpected_counts"] = [
            {"value": value, "count": count}
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    return outcome


_COLUMN_CHECKS: dict[str, Callable[..., ColumnResult]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_null": _null,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_distinct_values_to_contain_set": _contains_set,
}
