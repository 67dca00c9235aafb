"""The checks Great Expectations cannot express well (named ``fairdistill.*``): numeric
columns holding text, all-null columns, NaN or infinity, a target with other than two
classes, a sensitive attribute with one group, and groups or (group, label) cells too small
for a fairness measure to mean anything."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from fairdistill.models.constraints import spec_rules
from fairdistill.models.spec import IDENTIFIER_REASON, DatasetSpec
from fairdistill.models.validation.report import (
    CHECK_ALL_NULL,
    CHECK_CELL_ROWS,
    CHECK_GROUP_ROWS,
    CHECK_NON_FINITE,
    CHECK_NUMERIC_TEXT,
    CHECK_SENSITIVE_GROUPS,
    CHECK_TARGET_CLASSES,
    CHECK_UNTYPED_MIXED,
    MAX_EXAMPLES,
    ValidationFailure,
    distinct_examples,
    rows_text,
)
from fairdistill.models.validation.suite import (
    NUMERIC_TYPES,
)


def nan_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def numeric_text(frame: pl.DataFrame, spec: DatasetSpec) -> dict[str, tuple[int, list[str]]]:
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
            found[name] = (not_numbers.len(), distinct_examples(not_numbers))
    return found


def without_numeric_checks(
    spec: DatasetSpec, text_examples: dict[str, tuple[int, list[str]]]
) -> DatasetSpec:
    """Range and constraint checks on text columns would only repeat the text failure as
    a GX error."""
    columns = dict(spec.columns)
    for name in text_examples:
        columns[name] = columns[name].model_copy(
            update={"type": "categorical", "min": None, "max": None}
        )
    constraints = [
        item
        for item, rule in zip(spec.constraints, spec_rules(spec), strict=True)
        if not set(rule.columns) & set(text_examples)
    ]
    return spec.model_copy(update={"columns": columns, "constraints": tuple(constraints)})


def numeric_text_failures(
    text_examples: dict[str, tuple[int, list[str]]],
) -> list[ValidationFailure]:
    return [
        ValidationFailure(
            check=CHECK_NUMERIC_TEXT,
            column=name,
            unexpected_count=count,
            examples=examples,
            message=f"column '{name}' is declared numeric but holds text in {rows_text(count)}",
        )
        for name, (count, examples) in text_examples.items()
    ]


# A column the spec gives no type, stored as text, whose values are numbers but for a few
# ('unknown', '?', 'n/a') is refused rather than read as categories. Read as categories, it
# would be published as something else than what it holds (every number a category, or
# the whole column left out as free text) without anyone being told, while the same values
# in a column declared numeric are refused: the verdict must not depend on whether the
# spec happens to name the column. A few text values among numbers are nearly always
# typos or a missing-value marker; the error shows them and the one-line fix either way.
MOSTLY_NUMBERS_SHARE = 0.9


def untyped_mixed_failures(
    frame: pl.DataFrame, given: DatasetSpec, completed: DatasetSpec
) -> list[ValidationFailure]:
    """Columns without a type in ``given`` that are nearly all numbers, some text: features,
    and those left out as free text for their many distinct values (numbers have many)."""
    failures = []
    for name, column in completed.columns.items():
        declared = given.columns.get(name)
        if declared is not None and (declared.type is not None or declared.role == "ignore"):
            continue
        identifier = column.role == "ignore" and (column.reason or "").startswith(IDENTIFIER_REASON)
        if identifier or frame.schema[name] != pl.String:
            continue
        values = frame.get_column(name).drop_nulls()
        text = values.filter(values.cast(pl.Float64, strict=False).is_null())
        numbers = values.len() - text.len()
        if not text.len() or numbers < MOSTLY_NUMBERS_SHARE * values.len():
            continue
        failures.append(
            ValidationFailure(
                check=CHECK_UNTYPED_MIXED,
                column=name,
                unexpected_count=text.len(),
                examples=distinct_examples(text),
                message=f"column '{name}' has no type in the spec and holds numbers in "
                f"{rows_text(numbers)} but text in {rows_text(text.len())}",
            )
        )
    return failures


def all_null_failures(as_null: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
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


def non_finite_failures(frame: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
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
                    examples=distinct_examples(bad),
                    message=f"column '{name}' holds NaN or infinity in {rows_text(bad.len())}",
                )
            )
    return failures


def target_class_failures(frame: pl.DataFrame, spec: DatasetSpec) -> list[ValidationFailure]:
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


def group_checks(
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
        examples=distinct_examples(frame.get_column(key).cast(pl.String).drop_nulls()),
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
