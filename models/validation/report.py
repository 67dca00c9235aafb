"""What validation found, as a user reads it: failures, warnings, a Markdown table and one
error naming the first failed check. The check names and their hints live here too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from fairdistill.models.errors import DataValidationError

FAIRDISTILL_CHECK_PREFIX = "fairdistill."

CHECK_NUMERIC_TEXT = f"{FAIRDISTILL_CHECK_PREFIX}numeric_column_holds_text"

CHECK_UNTYPED_MIXED = f"{FAIRDISTILL_CHECK_PREFIX}untyped_column_mixes_numbers_and_text"

CHECK_ALL_NULL = f"{FAIRDISTILL_CHECK_PREFIX}column_all_null"

CHECK_NON_FINITE = f"{FAIRDISTILL_CHECK_PREFIX}numeric_values_finite"

CHECK_TARGET_CLASSES = f"{FAIRDISTILL_CHECK_PREFIX}target_two_classes"

CHECK_SENSITIVE_GROUPS = f"{FAIRDISTILL_CHECK_PREFIX}sensitive_two_groups"

CHECK_GROUP_ROWS = f"{FAIRDISTILL_CHECK_PREFIX}min_group_rows"

CHECK_CELL_ROWS = f"{FAIRDISTILL_CHECK_PREFIX}min_group_label_rows"

# A rule of the spec's constraints list, checked by the GX suite through a computed column.
CHECK_SPEC_CONSTRAINT = "spec_constraint"

MAX_EXAMPLES = 5

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
    CHECK_UNTYPED_MIXED: "write missing values as empty fields and remove the other text so "
    "the column reads as numbers, or give the column a type in the spec (columns: {<column>: "
    "{type: categorical}} keeps every value as a category)",
    CHECK_ALL_NULL: "drop the column or give it role: ignore in the spec",
    CHECK_NON_FINITE: "replace NaN and infinite values by real values or empty fields",
    CHECK_TARGET_CLASSES: "the target must hold exactly two labels: merge or filter the "
    "labels, or pick another target column",
    CHECK_SENSITIVE_GROUPS: "check the privileged values in the spec against the values the "
    "data uses; fairness needs rows in and outside the privileged group",
    CHECK_GROUP_ROWS: "supply more rows of the small group, or lower min_group_rows in the spec",
    CHECK_SPEC_CONSTRAINT: "fix the rows that break the rule, or correct or remove the rule "
    "under constraints: in the spec",
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
    if not report.success:
        raise_for_failure_list(report.failures, source)


def raise_for_failure_list(failures: list[ValidationFailure], source: str) -> None:
    """Raise one :class:`DataValidationError` naming the first of ``failures``, if any."""
    if not failures:
        return
    first = failures[0]
    examples = f" (e.g. {', '.join(first.examples[:3])})" if first.examples else ""
    more = len(failures) - 1
    others = f"; {more} more check{'s' if more != 1 else ''} failed" if more else ""
    raise DataValidationError(
        f"The data failed validation: {first.message}{examples}{others}",
        file=source,
        column=first.column,
        rule=first.check,
        hint=HINTS.get(first.check, DEFAULT_HINT).replace("<column>", first.column or "NAME"),
    )


def rows_text(count: int | None) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def distinct_examples(series: pl.Series) -> list[str]:
    """A few distinct offending values, most frequent first, as text."""
    counts = series.value_counts(sort=True, name="rows").head(MAX_EXAMPLES)
    return [str(value) for value in counts.get_column(series.name).to_list()]
