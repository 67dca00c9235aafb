"""Validation of an input table against its spec: the Great Expectations suite and
fairdistill's own checks, reported together."""

from fairdistill.models.validation.frame import (
    CheckedTable,
    check_table,
    column_warnings,
    quick_check_failures,
    validate_frame,
)
from fairdistill.models.validation.report import (
    CHECK_ALL_NULL,
    CHECK_CELL_ROWS,
    CHECK_GROUP_ROWS,
    CHECK_NON_FINITE,
    CHECK_NUMERIC_TEXT,
    CHECK_SENSITIVE_GROUPS,
    CHECK_SPEC_CONSTRAINT,
    CHECK_TARGET_CLASSES,
    CHECK_UNTYPED_MIXED,
    ValidationFailure,
    ValidationReport,
    raise_for_failure_list,
    raise_for_failures,
    report_to_markdown,
)
from fairdistill.models.validation.suite import build_expectation_suite

__all__ = [
    "CHECK_ALL_NULL",
    "CHECK_CELL_ROWS",
    "CHECK_GROUP_ROWS",
    "CHECK_NON_FINITE",
    "CHECK_NUMERIC_TEXT",
    "CHECK_SENSITIVE_GROUPS",
    "CHECK_SPEC_CONSTRAINT",
    "CHECK_TARGET_CLASSES",
    "CHECK_UNTYPED_MIXED",
    "CheckedTable",
    "ValidationFailure",
    "ValidationReport",
    "build_expectation_suite",
    "check_table",
    "column_warnings",
    "quick_check_failures",
    "raise_for_failure_list",
    "raise_for_failures",
    "report_to_markdown",
    "validate_frame",
]
