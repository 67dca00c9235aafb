"""The dataset spec: what a table holds and which columns are sensitive.

What cannot be inferred from the data (the target, its positive label, the sensitive
attributes and their privileged groups) is required; what can (column types, bounds,
nullability) is optional and filled in by :func:`complete_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from fairdistill.models.constraint_rules import (
    CHECK_CONSTRAINT,
    SUPPORTED_FORMS,
    Determined,
    EitherEquals,
    Rule,
    RuleSyntaxError,
    ValueRange,
    parse_rule,
)
from fairdistill.models.errors import SpecError
from fairdistill.models.schema_problems import SchemaProblem, closest, first_problem

ColumnType = Literal["categorical", "continuous", "integer"]
ColumnRole = Literal["feature", "ignore"]
Modality = Literal["tabular", "image"]
# The values a spec's split column may hold.
SPLIT_TRAIN, SPLIT_TEST = "train", "test"

# A string column with more distinct values than this is treated as an identifier,
# never one-hot encoded (30,000 one-hot columns would exhaust memory and leak rows).
DEFAULT_MAX_CATEGORIES = 100

# A column named like an identifier counts as one when (nearly) every value is distinct;
# "nearly" only on enough rows that a few repeats cannot be chance in a real key.
NEAR_UNIQUE_MIN_ROWS = 1000
NEAR_UNIQUE_SHARE = 0.95
# Below this many rows a sorted run of distinct values may well be a real feature.
MONOTONIC_MIN_ROWS = 100
IDENTIFIER_NAMES = frozenset(
    {"", "id", "uuid", "guid", "key", "pk", "index", "idx", "rowid", "ssn", "name", "email"}
)
IDENTIFIER_LAST_WORDS = frozenset(
    {"id", "ids", "uuid", "guid", "key", "number", "no", "nr", "code", "name", "email", "phone"}
)
TODO_PLACEHOLDER = "TODO"
# How the reason of a column left out as an identifier begins (ColumnSpec.reason).
IDENTIFIER_REASON = "identifier"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Strict):
    """One non-target, non-sensitive column. Every field may be inferred."""

    type: ColumnType | None = None
    role: ColumnRole = "feature"
    nullable: bool | None = None
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    reason: str | None = Field(
        default=None,
        description="Why the column was given its role when that was inferred, e.g. why it "
        "is ignored; for the user to check.",
    )


# YAML reads `1`, `1.5` and `yes` as a number or a boolean; labels are compared as the text
# of the column's values, so such scalars become text here and are matched against the
# column's own spelling of them once the data is known (see align_labels).
_TRUE_WORDS = frozenset({"true", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "off"})


def label_text(value: object) -> object:
    """A YAML scalar as label text: ``1`` -> ``"1"``, ``True`` -> ``"true"``; others as given."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _labels_text(value: object) -> object:
    if isinstance(value, list | tuple):
        return [label_text(item) for item in value]
    return label_text(value)


class TargetSpec(_Strict):
    column: str
    positive: str = Field(
        description="The label value counted as the favourable outcome; a number or a "
        "boolean is matched against the column's values (`positive: 1` for a 0/1 column)."
    )
    classes: tuple[str, ...] | None = Field(
        default=None, description="All label values; binary targets only for now."
    )

    @field_validator("positive", "classes", mode="before")
    @classmethod
    def _labels_as_text(cls, value: object) -> object:
        return _labels_text(value)


class SensitiveAttribute(_Strict):
    column: str
    privileged: tuple[str, ...] = Field(
        min_length=1,
        description="Values of the privileged group; every other value is the rest. Numbers "
        "and booleans are matched against the column's values (`privileged: [1]`).",
    )

    @field_validator("privileged", mode="before")
    @classmethod
    def _labels_as_text(cls, value: object) -> object:
        return _labels_text(value)


class ImageSpec(_Strict):
    """How an image is stored in a table: one float column per pixel and channel.

    The columns are named ``<column_prefix><channel>_<row>_<col>`` and ordered channel by
    channel, row by row (the layout of a C x H x W array, flattened).
    """

    channels: int = Field(ge=1, le=16)
    height: int = Field(ge=1, le=1024)
    width: int = Field(ge=1, le=1024)
    column_prefix: str = Field(default="pixel_", min_length=1)
    min_value: float = Field(default=0.0, description="Smallest value a pixel may take.")
    max_value: float = Field(default=1.0, description="Largest value a pixel may take.")

    @model_validator(mode="after")
    def _ordered_range(self) -> ImageSpec:
        if self.max_value <= self.min_value:
            raise ValueError("max_value must be above min_value")
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    @property
    def pixel_columns(self) -> list[str]:
        return [
            f"{self.column_prefix}{channel}_{row}_{col}"
            for channel in range(self.channels)
            for row in range(self.height)
            for col in range(self.width)
        ]

    def pixel_column_spec(self) -> ColumnSpec:
        return ColumnSpec(type="continuous", nullable=False, min=self.min_value, max=self.max_value)


class ConstraintSpec(_Strict):
    """One cross-column rule; a plain string in the spec is its ``rule``."""

    rule: str = Field(
        min_length=1,
        description="e.g. 'end >= start', 'capital_gain == 0 or capital_loss == 0', "
        "'education_num determined by education'",
    )
    name: str | None = Field(
        default=None,
        description="What the rule is called in metrics and reports; default: from its text "
        "('end >= start' is end_ge_start).",
    )

    @model_validator(mode="after")
    def _supported_form(self) -> ConstraintSpec:
        try:
            parse_rule(self.rule, self.name)
        except RuleSyntaxError as error:
            raise ValueError(str(error)) from error
        return self


class Provenance(_Strict):
    source: str | None = None
    licence: str | None = None
    citation: str | None = None
    notes: str | None = None


class DatasetSpec(_Strict):
    """The data contract of one table."""

    name: str
    description: str | None = None
    modality: Modality = "tabular"
    image: ImageSpec | None = Field(
        default=None, description="The pixel layout; required when modality is image."
    )
    target: TargetSpec
    sensitive: tuple[SensitiveAttribute, ...] = Field(min_length=1)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    min_rows: int = Field(default=100, ge=1)
    min_group_rows: int = Field(default=20, ge=1)
    max_categories: int = Field(default=DEFAULT_MAX_CATEGORIES, ge=2)
    constraints: tuple[ConstraintSpec, ...] = Field(
        default=(),
        description="Cross-column rules every input row must obey (checked by validation) "
        "and every synthetic row obeys (repaired on generation); see the README.",
    )
    provenance: Provenance | None = None
    split_column: str | None = Field(
        default=None,
        description=f"A column holding '{SPLIT_TRAIN}' or '{SPLIT_TEST}' per row: the data's "
        "own train/test split, used instead of a random one. Never modelled.",
    )
    separator: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="The column separator of the CSV file this spec describes (e.g. ';'); "
        "default: the one its header shows. The command's --separator wins.",
    )

    @model_validator(mode="before")
    @classmethod
    def _image_pixel_columns(cls, raw: Any) -> Any:
        """An image spec declares its pixel columns through ``image``: every pixel column
        not listed under ``columns`` is a non-null continuous feature within the pixel range,
        so the data contract checks each of them without the spec listing hundreds."""
        if not isinstance(raw, dict) or raw.get("modality") != "image":
            return raw
        try:
            image = ImageSpec.model_validate(raw.get("image"))
        except ValidationError:
            return raw  # reported by the field's own validation
        given = raw.get("columns") or {}
        if not isinstance(given, dict):
            return raw
        pixel = image.pixel_column_spec()
        pixels = {name: pixel for name in image.pixel_columns if name not in given}
        return {**raw, "columns": {**given, **pixels}}

    @model_validator(mode="after")
    def _modality_fields(self) -> DatasetSpec:
        if (self.modality == "image") != (self.image is not None):
            raise ValueError("'image' (channels, height, width) goes with modality: image only")
        if self.modality == "image" and self.constraints:
            raise ValueError("constraints relate table columns; an image dataset takes none")
        if self.split_column is not None and self.split_column in (
            self.target.column,
            *self.sensitive_columns,
            *self.columns,
        ):
            raise ValueError(
                f"split_column '{self.split_column}' is also the target, a sensitive attribute "
                "or a listed column; the split column is never modelled"
            )
        return self

    @field_validator("constraints", mode="before")
    @classmethod
    def _rule_strings(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [{"rule": item} if isinstance(item, str) else item for item in value]
        return value

    @field_serializer("constraints")
    def _rules_as_written(self, value: tuple[ConstraintSpec, ...]) -> list[object]:
        """A rule without a name is written back as the plain string it was given as."""
        return [item.rule if item.name is None else item.model_dump() for item in value]

    @field_validator("sensitive")
    @classmethod
    def _distinct_sensitive(
        cls, value: tuple[SensitiveAttribute, ...]
    ) -> tuple[SensitiveAttribute, ...]:
        names = [attribute.column for attribute in value]
        if len(set(names)) != len(names):
            raise ValueError(f"sensitive attributes repeat a column: {names}")
        return value

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The ``constraints:`` list parsed (each was parsed once when the spec was read)."""
        return tuple(parse_rule(item.rule, item.name) for item in self.constraints)

    @property
    def sensitive_columns(self) -> list[str]:
        return [attribute.column for attribute in self.sensitive]

    @property
    def feature_columns(self) -> list[str]:
        """Columns the generator models besides target and sensitive ones, in spec order."""
        return [name for name, column in self.columns.items() if column.role == "feature"]

    @property
    def ignored_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.role == "ignore"]

    def column(self, name: str) -> ColumnSpec:
        return self.columns[name]


def load_spec(path: str | Path) -> DatasetSpec:
    """Read a spec from YAML, turning every problem into one :class:`SpecError`."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(
            "The dataset spec does not exist",
            file=str(path),
            rule="spec-exists",
            hint="pass --spec with the path of a YAML spec (fairdistill inspect DATA writes one)",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SpecError(
            f"The dataset spec is not valid YAML: {str(error).splitlines()[0]}",
            file=str(path),
            rule="spec-yaml",
            hint="fix the YAML syntax (indentation, colons, quotes)",
        ) from error
    return parse_spec(raw, source=str(path))


def parse_spec(raw: object, *, source: str = "<spec>") -> DatasetSpec:
    if not isinstance(raw, dict):
        raise SpecError(
            "The dataset spec must be a YAML mapping with at least 'name', 'target' and "
            "'sensitive'",
            file=source,
            rule="spec-shape",
            hint="see data/adult/spec.yaml for an example",
        )
    placeholders = todo_placeholders(raw)
    if placeholders:
        raise SpecError(
            f"The dataset spec still holds {TODO_PLACEHOLDER} placeholders at "
            f"{', '.join(placeholders)}",
            file=source,
            rule="spec-todo",
            hint="replace each TODO by a value from the data: the drafted spec could not "
            "tell them from the data alone",
        )
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as error:
        raise _spec_schema_error(first_problem(error, DatasetSpec), source) from error


def _spec_schema_error(problem: SchemaProblem, source: str) -> SpecError:
    where = problem.where or "spec"
    if problem.kind == "unknown":
        guess = f" (did you mean '{problem.suggestion}'?)" if problem.suggestion else ""
        hint = (
            f"rename '{problem.leaf}' to '{problem.suggestion}'"
            if problem.suggestion
            else f"remove '{problem.leaf}'; the keys allowed there are "
            f"{', '.join(problem.valid_keys)}"
        )
        return SpecError(
            f"The dataset spec has an unknown key '{where}'{guess}",
            file=source,
            rule="spec-unknown-key",
            hint=hint,
        )
    if problem.kind == "missing":
        return SpecError(
            f"The dataset spec lacks the required field '{where}'",
            file=source,
            rule="spec-schema",
            hint="the target (column, positive) and at least one sensitive attribute "
            "(column, privileged) cannot be inferred and must be given",
        )
    if where.startswith("constraints"):
        return SpecError(
            f"The dataset spec field '{where}' is invalid: {problem.message}",
            file=source,
            rule=CHECK_CONSTRAINT,
            hint=f"write each constraint in one of the supported forms: {SUPPORTED_FORMS}",
        )
    return SpecError(
        f"The dataset spec field '{where}' is invalid: {problem.message}",
        file=source,
        rule="spec-schema",
        hint=f"fix '{where}' in the spec; data/adult/spec.yaml shows every field in use",
    )


def todo_placeholders(raw: object, where: str = "") -> list[str]:
    """Where a raw spec still holds the TODO placeholder of a drafted spec, as dotted paths
    (``target.column``, ``sensitive.0.privileged.0``)."""
    if isinstance(raw, str):
        return [where or "spec"] if raw.strip() == TODO_PLACEHOLDER else []
    if isinstance(raw, dict):
        items = [(str(key), value) for key, value in raw.items()]
    elif isinstance(raw, list | tuple):
        items = [(str(index), value) for index, value in enumerate(raw)]
    else:
        return []
    found: list[str] = []
    for key, value in items:
        found += todo_placeholders(value, f"{where}.{key}" if where else key)
    return found


def check_rules_against_spec(
    rules: Sequence[Rule], spec: DatasetSpec, data_columns: Sequence[str], *, source: str
) -> None:
    """Refuse a rule whose columns the data lacks or whose columns cannot take the rule.

    ``spec`` is complete (every column typed). One :class:`SpecError` names the first
    problem, the rule and the column.
    """
    names = [rule.name for rule in rules]
    for rule in rules:
        if names.count(rule.name) > 1:
            raise _rule_error(
                rule,
                f"shares its name '{rule.name}' with another rule",
                source,
                None,
                "give one of them another name: {rule: '...', name: '...'}",
            )
        for column in rule.columns:
            _check_column_exists(rule, column, spec, data_columns, source)
        if len(set(rule.columns)) < len(rule.columns):
            raise _rule_error(rule, "names the same column twice", source, rule.columns[0])
        if isinstance(rule, Determined):
            _check_determined(rule, spec, source)
        else:
            for column in rule.columns:
                _check_numeric(rule, column, spec, source)
        if isinstance(rule, EitherEquals):
            _check_constants(rule, spec, source)


def _check_column_exists(
    rule: Rule, column: str, spec: DatasetSpec, data_columns: Sequence[str], source: str
) -> None:
    if column in data_columns:
        if spec.split_column == column or (
            column in spec.columns and spec.columns[column].role == "ignore"
        ):
            raise _rule_error(
                rule,
                f"names column '{column}', which is not modelled (role: ignore or "
                "the split column), so the synthetic data has no such column",
                source,
                column,
                f"give '{column}' role: feature in the spec, or remove the rule",
            )
        return
    guess = closest(column, list(data_columns))
    raise _rule_error(
        rule,
        f"names column '{column}', which the data lacks"
        + (f" (did you mean '{guess}'?)" if guess else ""),
        source,
        column,
        f"write '{guess}'" if guess else f"use one of: {', '.join(list(data_columns)[:12])}",
    )


def _rule_role(column: str, spec: DatasetSpec) -> str:
    if column == spec.target.column:
        return "the target"
    if column in spec.sensitive_columns:
        return "a sensitive attribute"
    return "a feature"


def _check_numeric(rule: Rule, column: str, spec: DatasetSpec, source: str) -> None:
    role = _rule_role(column, spec)
    if role != "a feature":
        raise _rule_error(
            rule, f"compares '{column}', which is {role} (labels, not numbers)", source, column
        )
    kind = spec.columns[column].type
    if kind not in ("integer", "continuous"):
        raise _rule_error(
            rule,
            f"compares '{column}', which is {kind}, as a number",
            source,
            column,
            f"declare '{column}' integer or continuous, or use 'B determined by A' for categories",
        )


def _check_determined(rule: Determined, spec: DatasetSpec, source: str) -> None:
    role = _rule_role(rule.dependent, spec)
    if role != "a feature":
        raise _rule_error(
            rule,
            f"would set '{rule.dependent}', which is {role}: repairing it would change "
            "the labels or groups the fairness measures are about",
            source,
            rule.dependent,
            f"swap the columns ('{rule.determinant} determined by {rule.dependent}') or "
            "remove the rule",
        )
    for column in rule.columns:
        if _rule_role(column, spec) != "a feature":
            continue  # target and sensitive attributes are categorical labels
        kind = spec.columns[column].type
        if kind == "continuous":
            raise _rule_error(
                rule,
                f"uses '{column}', a continuous column: 'determined by' pairs "
                "categories or integers",
                source,
                column,
                f"declare '{column}' integer or categorical in the spec",
            )


def _check_constants(rule: EitherEquals, spec: DatasetSpec, source: str) -> None:
    pairs = ((rule.first, rule.first_value), (rule.second, rule.second_value))
    for column, value in pairs:
        column_spec = spec.columns[column]
        allowed = ValueRange(column_spec.type == "integer", column_spec.min, column_spec.max)
        if not allowed.admits(np.asarray([value])).all():
            raise _rule_error(
                rule,
                f"sets '{column}' to {value:g}, outside its bounds or rounding "
                f"(min {column_spec.min}, max {column_spec.max}, {column_spec.type})",
                source,
                column,
                f"widen min/max of '{column}' in the spec or fix the rule",
            )


def _rule_error(
    rule: Rule, problem: str, source: str, column: str | None, hint: str | None = None
) -> SpecError:
    return SpecError(
        f"The spec's constraint '{rule.text}' {problem}",
        file=source,
        column=column,
        rule=CHECK_CONSTRAINT,
        hint=hint or f"the supported forms are {SUPPORTED_FORMS}",
    )


def _infer_column(series: pl.Series, given: ColumnSpec) -> ColumnSpec:
    dtype = series.dtype
    inferred_type: ColumnType
    if given.type is not None:
        inferred_type = given.type
    elif dtype.is_integer():
        inferred_type = "integer"
    elif dtype.is_float():
        inferred_type = "continuous"
    else:
        inferred_type = "categorical"
    updates: dict[str, object] = {"type": inferred_type}
    if given.nullable is None:
        updates["nullable"] = series.null_count() > 0
    if inferred_type != "categorical" and dtype.is_numeric():
        finite = series.drop_nulls()
        if dtype.is_float():
            finite = finite.filter(finite.is_finite())
        if finite.len() > 0:
            if given.min is None:
                updates["min"] = float(finite.min())  # type: ignore[arg-type]
            if given.max is None:
                updates["max"] = float(finite.max())  # type: ignore[arg-type]
    if inferred_type == "categorical" and given.categories is None and given.role == "feature":
        values = series.drop_nulls().cast(pl.String).unique().sort().to_list()
        updates["categories"] = tuple(values)
    return given.model_copy(update=updates)


def complete_spec(spec: DatasetSpec, frame: pl.DataFrame, *, source: str = "<data>") -> DatasetSpec:
    """Fill in what the spec leaves out from the data, and check what it names exists.

    Columns the spec does not list become features with inferred types, except identifiers
    and text with more distinct values than ``max_categories``: those become ``ignore``,
    with the reason recorded in ``ColumnSpec.reason``. Columns the spec lists keep the role
    it gives them.
    """
    present = set(frame.columns)
    split = [spec.split_column] if spec.split_column else []
    named = [spec.target.column, *spec.sensitive_columns, *split, *spec.columns]
    for name in named:
        if name not in present:
            raise SpecError(
                f"The spec names column '{name}' but the data has no such column "
                f"(columns: {', '.join(frame.columns[:12])}{'…' if frame.width > 12 else ''})",
                file=source,
                column=name,
                rule="spec-columns-exist",
                hint="fix the column name in the spec or the data header",
            )
    columns = infer_columns(
        frame,
        spec.columns,
        skip={spec.target.column, *spec.sensitive_columns, *split},
        max_categories=spec.max_categories,
    )
    completed = align_labels(spec, frame).model_copy(update={"columns": columns})
    check_rules_against_spec(completed.rules, completed, frame.columns, source=source)
    return completed


def align_labels(spec: DatasetSpec, frame: pl.DataFrame) -> DatasetSpec:
    """The spec with its label values spelt as the data spells them.

    Labels are compared as the text of a column's values. ``positive: 1`` reads as ``"1"``,
    which a float column writes ``"1.0"``, and ``positive: yes`` (a YAML boolean) as
    ``"true"``, which a text column may write ``"yes"``: each such value is replaced by the
    one value of the column that means the same. A value the column does not hold at all
    is left as written, for validation to report.
    """
    target = spec.target
    values = _label_values(frame, target.column)
    aligned_target = target.model_copy(
        update={
            "positive": _aligned(target.positive, values),
            "classes": tuple(_aligned(c, values) for c in target.classes)
            if target.classes
            else None,
        }
    )
    sensitive = tuple(
        attribute.model_copy(
            update={
                "privileged": tuple(
                    _aligned(value, _label_values(frame, attribute.column))
                    for value in attribute.privileged
                )
            }
        )
        for attribute in spec.sensitive
    )
    return spec.model_copy(update={"target": aligned_target, "sensitive": sensitive})


def _label_values(frame: pl.DataFrame, column: str) -> list[str]:
    series = frame.get_column(column).drop_nulls().unique().cast(pl.String)
    return sorted(series.drop_nulls().to_list())


def _aligned(label: str, values: list[str]) -> str:
    if label in values:
        return label
    same = [value for value in values if _same_label(label, value)]
    return same[0] if len(same) == 1 else label


def _same_label(label: str, value: str) -> bool:
    """``1`` and ``1.0``, or a YAML boolean (``true``) and ``Yes``: one value written two
    ways. Text the spec quotes is matched as written: ``"Yes"`` is not ``yes``."""
    number, other = _as_number(label), _as_number(value)
    if number is not None and other is not None:
        return number == other
    if label == "true":
        return value.lower() in _TRUE_WORDS
    if label == "false":
        return value.lower() in _FALSE_WORDS
    return False


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def infer_columns(
    frame: pl.DataFrame,
    given: dict[str, ColumnSpec],
    *,
    skip: set[str] | frozenset[str] = frozenset(),
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> dict[str, ColumnSpec]:
    """Every column of ``frame`` but ``skip``, in frame order, completed from the data.

    Columns in ``given`` keep what it says; the others may become ``ignore`` (see
    :func:`ignore_reason`).
    """
    columns: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        if name in skip:
            continue
        series = frame.get_column(name)
        column = given.get(name)
        if column is None:
            reason = ignore_reason(series, max_categories=max_categories)
            column = ColumnSpec(role="ignore", reason=reason) if reason else ColumnSpec()
        columns[name] = _infer_column(series, column)
    return columns


def ignore_reason(series: pl.Series, *, max_categories: int = DEFAULT_MAX_CATEGORIES) -> str | None:
    """Why a column the spec does not list should not be modelled, or None if it should.

    Identifiers (integer or text keys) and free text would be memorised or one-hot encoded
    into thousands of columns; neither says anything a generator should learn.
    """
    dtype = series.dtype
    if dtype.is_float() or dtype == pl.Boolean:
        return None
    rows, distinct = series.len(), series.drop_nulls().n_unique()
    counts = f"{distinct:,} distinct values in {rows:,} rows"
    if dtype.is_integer() or dtype in (pl.String, pl.Categorical):
        all_distinct = rows > 0 and distinct == rows
        nearly_distinct = rows >= NEAR_UNIQUE_MIN_ROWS and distinct >= NEAR_UNIQUE_SHARE * rows
        if (all_distinct or nearly_distinct) and looks_like_identifier_name(series.name):
            return f"{IDENTIFIER_REASON}: {counts}, named like an id"
        if all_distinct and rows >= MONOTONIC_MIN_ROWS and _monotonic(series):
            return f"{IDENTIFIER_REASON}: {counts}, in increasing or decreasing order"
    if not dtype.is_numeric() and distinct > max_categories:
        return (
            f"too many categories: {counts} (max_categories: {max_categories}); free text, "
            "dates or an identifier"
        )
    return None


def looks_like_identifier_name(name: str) -> bool:
    """``id``, ``customer_id``, ``CustomerID``, ``case_number``, ``uuid``, ``Unnamed: 0``…"""
    words = column_name_words(name)
    if "_".join(words) in IDENTIFIER_NAMES or not words:
        return True
    return words[-1] in IDENTIFIER_LAST_WORDS or words[0] in {"id", "unnamed"}


def column_name_words(name: str) -> list[str]:
    """The lower-case words of a column name: ``CustomerID`` and ``customer-id`` alike give
    ``["customer", "id"]``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return [word for word in re.split(r"[^a-z0-9]+", snake) if word]


def _monotonic(series: pl.Series) -> bool:
    return series.is_sorted() or series.is_sorted(descending=True)


def spec_to_yaml(spec: DatasetSpec) -> str:
    raw = spec.model_dump(mode="json", exclude_none=True)
    if not raw.get("constraints"):
        raw.pop("constraints", None)  # most specs have none: keep their YAML as it was
    return yaml.safe_dump(raw, sort_keys=False)
