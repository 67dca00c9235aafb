"""The dataset spec: what a table holds and which columns are sensitive.

What cannot be inferred from the data (the target, its positive label, the sensitive
attributes and their privileged groups) is required; what can (column types, bounds,
nullability) is optional and filled in by :func:`complete_spec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fairdistill.models.errors import SpecError

ColumnType = Literal["categorical", "continuous", "integer"]
ColumnRole = Literal["feature", "ignore"]

# A string column with more distinct values than this is treated as an identifier,
# never one-hot encoded (30,000 one-hot columns would exhaust memory and leak rows).
DEFAULT_MAX_CATEGORIES = 100


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


class TargetSpec(_Strict):
    column: str
    positive: str = Field(description="The label value counted as the favourable outcome.")
    classes: tuple[str, ...] | None = Field(
        default=None, description="All label values; binary targets only for now."
    )


class SensitiveAttribute(_Strict):
    column: str
    privileged: tuple[str, ...] = Field(
        min_length=1, description="Values of the privileged group; every other value is the rest."
    )


class Provenance(_Strict):
    source: str | None = None
    licence: str | None = None
    citation: str | None = None
    notes: str | None = None


class DatasetSpec(_Strict):
    """The data contract of one table."""

    name: str
    description: str | None = None
    modality: Literal["tabular"] = "tabular"
    target: TargetSpec
    sensitive: tuple[SensitiveAttribute, ...] = Field(min_length=1)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    min_rows: int = Field(default=100, ge=1)
    min_group_rows: int = Field(default=20, ge=1)
    max_categories: int = Field(default=DEFAULT_MAX_CATEGORIES, ge=2)
    provenance: Provenance | None = None

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
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        missing = first["type"] == "missing"
        message = (
            f"The dataset spec lacks the required field '{where}'"
            if missing
            else f"The dataset spec field '{where}' is invalid: {first['msg']}"
        )
        raise SpecError(
            message,
            file=source,
            rule="spec-schema",
            hint="the target (column, positive) and at least one sensitive attribute "
            "(column, privileged) cannot be inferred and must be given",
        ) from error


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

    Columns the spec does not list become features with inferred types; string columns
    with more distinct values than ``max_categories`` become ``ignore`` (identifiers).
    """
    present = set(frame.columns)
    named = [spec.target.column, *spec.sensitive_columns, *spec.columns]
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
    reserved = {spec.target.column, *spec.sensitive_columns}
    columns: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        if name in reserved:
            continue
        given = spec.columns.get(name, ColumnSpec())
        if given.role == "feature" and given.type is None and name not in spec.columns:
            series = frame.get_column(name)
            if not series.dtype.is_numeric() and series.n_unique() > spec.max_categories:
                given = given.model_copy(update={"role": "ignore"})
        columns[name] = _infer_column(frame.get_column(name), given)
    return spec.model_copy(update={"columns": columns})


def spec_to_yaml(spec: DatasetSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
