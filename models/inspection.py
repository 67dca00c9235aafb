"""Draft a dataset spec for a new table, for its owner to check and finish.

The data tells column types, bounds, nullability and which columns are identifiers or free
text. It cannot tell which column is the label, which label is the favourable outcome, which
attributes are sensitive or which group is privileged: those are proposed from column names
and value counts, marked ``CHECK`` in the YAML, or left as ``TODO`` when nothing fits. A spec
with a ``TODO`` left refuses to load (see :func:`fairdistill.models.spec.parse_spec`).
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import yaml

from fairdistill.models.errors import SpecError
from fairdistill.models.spec import (
    DEFAULT_MAX_CATEGORIES,
    TODO_PLACEHOLDER,
    ColumnSpec,
    DatasetSpec,
    column_name_words,
    infer_columns,
    parse_spec,
    todo_placeholders,
)

# Words that name a label column, as the whole name or its last word ("credit_risk").
TARGET_WORDS = frozenset(
    {
        "label",
        "target",
        "class",
        "outcome",
        "y",
        "income",
        "default",
        "defaulted",
        "churn",
        "churned",
        "approved",
        "approval",
        "decision",
        "response",
        "result",
        "risk",
        "recid",
        "recidivism",
        "fraud",
        "hired",
        "admitted",
        "survived",
    }
)
# Whole names of attributes that anti-discrimination law or fairness audits usually protect.
SENSITIVE_NAMES = frozenset(
    {
        "sex",
        "gender",
        "race",
        "ethnicity",
        "ethnic_group",
        "ethnic_origin",
        "race_ethnicity",
        "age_group",
        "age_cat",
        "age_category",
        "age_band",
        "religion",
        "nationality",
        "citizenship",
        "disability",
        "skin_color",
        "skin_colour",
    }
)
# Words that mark a sensitive attribute inside a longer name ("applicant_sex").
SENSITIVE_WORDS = frozenset({"sex", "gender", "race", "ethnicity", "religion", "nationality"})
# Labels that usually mean the good outcome, lower-cased; else the rarer label is proposed.
FAVOURABLE_LABELS = (
    "1",
    "true",
    "yes",
    "y",
    "good",
    "approved",
    "accepted",
    "granted",
    "repaid",
    "paid",
    "success",
    "positive",
    "pass",
    "hired",
    "admitted",
)
MAX_LISTED_VALUES = 5
COMMENT_WIDTH = 96
DEFAULT_MIN_ROWS = DatasetSpec.model_fields["min_rows"].default
DEFAULT_MIN_GROUP_ROWS = DatasetSpec.model_fields["min_group_rows"].default


@dataclass(frozen=True)
class SpecDraft:
    """A proposed spec: the mapping its YAML holds and the notes that go with it."""

    raw: dict[str, Any]
    columns: dict[str, ColumnSpec]
    target_notes: dict[str, list[str]] = field(default_factory=dict)
    sensitive_notes: dict[int, list[str]] = field(default_factory=dict)
    source: str | None = None
    rows: int = 0
    width: int = 0

    @property
    def todos(self) -> list[str]:
        """Where the draft still holds a TODO, as dotted paths (``target.column``)."""
        return todo_placeholders(self.raw)

    @property
    def target_column(self) -> str | None:
        column = self.raw["target"]["column"]
        return None if column == TODO_PLACEHOLDER else column

    @property
    def sensitive_columns(self) -> list[str]:
        return [
            attribute["column"]
            for attribute in self.raw["sensitive"]
            if attribute["column"] != TODO_PLACEHOLDER
        ]

    def to_spec(self) -> DatasetSpec | dict[str, Any]:
        """The spec when nothing is left to fill in, else a copy of the mapping with TODOs."""
        if self.todos:
            return copy.deepcopy(self.raw)
        return parse_spec(copy.deepcopy(self.raw), source=self.source or "<draft>")

    def to_yaml(self) -> str:
        return _render_yaml(self)


def propose_spec(
    frame: pl.DataFrame,
    *,
    name: str,
    target: str | None = None,
    positive: str | None = None,
    sensitive: list[str] | None = None,
    source: str | None = None,
) -> SpecDraft:
    """Draft a spec for ``frame``; what is given is checked against the data and kept."""
    _check_columns_exist(frame, [*([target] if target else []), *(sensitive or [])], source)
    if target is not None and target in (sensitive or []):
        raise SpecError(
            f"Column '{target}' cannot be both the target and a sensitive attribute",
            file=source,
            column=target,
            rule="spec-target-not-sensitive",
            hint="name another column as the target or as the sensitive attribute",
        )
    target_raw, target_notes = _target_section(
        frame, target, positive, set(sensitive or []), source
    )
    chosen_target = target_raw["column"]
    sensitive_names = list(sensitive) if sensitive else _sensitive_candidates(frame, chosen_target)
    sensitive_raw, sensitive_notes = _sensitive_section(frame, sensitive_names)
    reserved = {chosen_target, *sensitive_names}
    columns = _without_useless_columns(
        frame, infer_columns(frame, {}, skip=reserved, max_categories=DEFAULT_MAX_CATEGORIES)
    )
    raw: dict[str, Any] = {
        "name": name,
        "target": target_raw,
        "sensitive": sensitive_raw,
        "min_rows": DEFAULT_MIN_ROWS,
        "min_group_rows": DEFAULT_MIN_GROUP_ROWS,
        "columns": {column: _column_entry(spec) for column, spec in columns.items()},
    }
    return SpecDraft(
        raw=raw,
        columns=columns,
        target_notes=target_notes,
        sensitive_notes=sensitive_notes,
        source=source,
        rows=frame.height,
        width=frame.width,
    )


def draft_spec(
    frame: pl.DataFrame,
    *,
    name: str,
    target: str | None = None,
    positive: str | None = None,
    sensitive: list[str] | None = None,
) -> DatasetSpec | dict[str, Any]:
    """A spec for ``frame``, or the mapping with ``TODO`` where the data could not tell.

    Column entries carry type, nullability, observed bounds and, for ignored columns, the
    reason; categories are left to :func:`~fairdistill.models.spec.complete_spec`.
    """
    draft = propose_spec(frame, name=name, target=target, positive=positive, sensitive=sensitive)
    return draft.to_spec()


def draft_spec_yaml(
    frame: pl.DataFrame,
    *,
    name: str,
    target: str | None = None,
    positive: str | None = None,
    sensitive: list[str] | None = None,
    source: str | None = None,
) -> str:
    """The drafted spec as YAML, with comments saying what to check and what to fill in."""
    draft = propose_spec(
        frame, name=name, target=target, positive=positive, sensitive=sensitive, source=source
    )
    return draft.to_yaml()


# ---------------------------------------------------------------- target


def _target_section(
    frame: pl.DataFrame,
    target: str | None,
    positive: str | None,
    sensitive: set[str],
    source: str | None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The target mapping, and the notes on its fields (``column``, ``positive``)."""
    notes: dict[str, list[str]] = {"column": [], "positive": []}
    if target is None:
        candidates = [c for c in _target_candidates(frame) if c not in sensitive]
        if not candidates:
            notes["column"].append(
                "TODO: name the label column (no two-valued column is named like a label), "
                "give its favourable label as positive, and delete its entry under columns"
            )
            return {"column": TODO_PLACEHOLDER, "positive": TODO_PLACEHOLDER}, notes
        target = candidates[0]
        others = f"; other candidates: {', '.join(candidates[1:])}" if candidates[1:] else ""
        notes["column"].append(f"CHECK: proposed as the label (two values, named like one){others}")
    counts = _value_counts(frame.get_column(target))
    labels = sorted(counts)
    if positive is not None and positive not in counts:
        raise SpecError(
            f"The positive label '{positive}' never occurs in target column '{target}' "
            f"(labels: {_listing(counts)})",
            file=source,
            column=target,
            rule="spec-target-positive",
            hint="give one of the labels the data uses as the positive (favourable) label",
        )
    section: dict[str, Any] = {"column": target, "positive": positive}
    if len(labels) == 2:
        section["classes"] = labels
    else:
        notes["column"].append(
            f"CHECK: '{target}' holds {len(labels)} labels; the target must hold exactly two: "
            "merge or filter the labels first"
        )
    if positive is None:
        guess = _favourable_guess(counts) if len(labels) == 2 else None
        section["positive"] = guess or TODO_PLACEHOLDER
        what = "the favourable outcome" if guess else "TODO: give the favourable outcome"
        notes["positive"].append(
            f"{'CHECK: ' if guess else ''}{what}, the label a fair model should grant every "
            f"group alike; labels: {_listing(counts)}"
        )
    return section, notes


def _target_candidates(frame: pl.DataFrame) -> list[str]:
    """Two-valued columns named like a label: whole-name matches first, then last words,
    then any word; the rightmost first within each, as labels tend to come last."""
    binary = [
        (name, column_name_words(name))
        for name in reversed(frame.columns)
        if _distinct(frame, name) == 2 and not _is_sensitive_name(name)
    ]
    ranked: list[str] = []
    for matches in (
        lambda words: "_".join(words) in TARGET_WORDS,
        lambda words: bool(words) and words[-1] in TARGET_WORDS,
        lambda words: any(word in TARGET_WORDS for word in words),
    ):
        ranked += [name for name, words in binary if name not in ranked and matches(words)]
    return ranked


def _favourable_guess(counts: dict[str, int]) -> str:
    by_lower = {label.strip().lower(): label for label in counts}
    for label in FAVOURABLE_LABELS:
        if label in by_lower:
            return by_lower[label]
    # Datasets usually label the outcome of interest, which is often the rarer one.
    return min(counts, key=lambda label: (counts[label], label))


# ---------------------------------------------------------------- sensitive attributes


def _sensitive_candidates(frame: pl.DataFrame, target: str) -> list[str]:
    return [
        name
        for name in frame.columns
        if name != target
        and _is_sensitive_name(name)
        and not frame.schema[name].is_float()
        and 2 <= _distinct(frame, name) <= DEFAULT_MAX_CATEGORIES
    ]


def _sensitive_section(
    frame: pl.DataFrame, columns: list[str]
) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    if not columns:
        todo = [
            "TODO: name at least one sensitive attribute (a column such as sex or race) and "
            "the values of its privileged group; no column is named like one"
        ]
        return [{"column": TODO_PLACEHOLDER, "privileged": [TODO_PLACEHOLDER]}], {0: todo}
    section, notes = [], {}
    for index, column in enumerate(columns):
        counts = _value_counts(frame.get_column(column))
        most_frequent = min(counts, key=lambda value: (-counts[value], value)) if counts else None
        section.append({"column": column, "privileged": [most_frequent or TODO_PLACEHOLDER]})
        notes[index] = [
            "CHECK: privileged is a placeholder (the most frequent value): list the values of "
            f"the group the data favours; values: {_listing(counts)}"
        ]
    return section, notes


def _is_sensitive_name(name: str) -> bool:
    words = column_name_words(name)
    return "_".join(words) in SENSITIVE_NAMES or any(word in SENSITIVE_WORDS for word in words)


# ---------------------------------------------------------------- columns


def _without_useless_columns(
    frame: pl.DataFrame, columns: dict[str, ColumnSpec]
) -> dict[str, ColumnSpec]:
    """Empty and constant columns teach a generator nothing; validation would refuse the
    empty ones as features."""
    kept = dict(columns)
    for name, column in columns.items():
        if column.role != "feature":
            continue
        series = frame.get_column(name)
        reason = None
        if series.null_count() == series.len():
            reason = f"empty: all {series.len():,} values are missing"
        elif series.null_count() == 0 and series.n_unique() == 1:
            reason = f"constant: the same value in all {series.len():,} rows"
        if reason:
            kept[name] = column.model_copy(
                update={"role": "ignore", "reason": reason, "categories": None}
            )
    return kept


def _column_entry(column: ColumnSpec) -> dict[str, Any]:
    """What the YAML lists for one column: categories are inferred again on every run."""
    entry = column.model_dump(mode="json", exclude_none=True, exclude={"categories"})
    if entry.get("role") == "feature":
        del entry["role"]
    if column.type == "integer":
        for bound in ("min", "max"):
            if bound in entry and float(entry[bound]).is_integer():
                entry[bound] = int(entry[bound])
    return entry


# ---------------------------------------------------------------- values and names


def _distinct(frame: pl.DataFrame, name: str) -> int:
    return frame.get_column(name).drop_nulls().n_unique()


def _value_counts(series: pl.Series) -> dict[str, int]:
    """Rows per value as text (how the spec names labels and groups), most frequent first."""
    counts = series.drop_nulls().cast(pl.String).value_counts(name="rows")
    ordered = sorted(counts.rows(), key=lambda row: (-row[1], row[0]))
    return {value: rows for value, rows in ordered}


def _listing(counts: dict[str, int]) -> str:
    shown = [f"{value} ({rows:,} rows)" for value, rows in list(counts.items())[:MAX_LISTED_VALUES]]
    more = len(counts) - MAX_LISTED_VALUES
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _check_columns_exist(frame: pl.DataFrame, names: list[str], source: str | None) -> None:
    for name in names:
        if name not in frame.columns:
            raise SpecError(
                f"The data has no column '{name}' (columns: {', '.join(frame.columns[:12])}"
                f"{'…' if frame.width > 12 else ''})",
                file=source,
                column=name,
                rule="spec-columns-exist",
                hint="check the spelling against the data header",
            )


# ---------------------------------------------------------------- summary


@dataclass(frozen=True)
class ColumnSummary:
    name: str
    dtype: str
    type: str
    nulls: int
    distinct: int
    role: str
    reason: str | None


def summarize_columns(frame: pl.DataFrame, draft: SpecDraft) -> list[ColumnSummary]:
    """One line of facts per column: what the data holds and what the draft does with it."""
    summaries = []
    for name in frame.columns:
        series = frame.get_column(name)
        column = draft.columns.get(name)
        if name == draft.target_column:
            role, kind, reason = "target", "categorical", None
        elif name in draft.sensitive_columns:
            role, kind, reason = "sensitive", "categorical", None
        else:
            assert column is not None  # every other column was inferred
            role, kind, reason = column.role, str(column.type), column.reason
        summaries.append(
            ColumnSummary(
                name=name,
                dtype=str(series.dtype),
                type=kind,
                nulls=series.null_count(),
                distinct=series.drop_nulls().n_unique(),
                role=role,
                reason=reason,
            )
        )
    return summaries


def format_summary(frame: pl.DataFrame, draft: SpecDraft) -> str:
    """A plain-text table of :func:`summarize_columns`, under a line on the table's size."""
    header = ("column", "dtype", "type", "nulls", "distinct", "role", "reason")
    rows = [
        (s.name, s.dtype, s.type, f"{s.nulls:,}", f"{s.distinct:,}", s.role, s.reason or "")
        for s in summarize_columns(frame, draft)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        f"{draft.source or draft.raw['name']}: {frame.height:,} rows, {frame.width:,} columns",
        *(
            (
                "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
                + f"  {row[-1]}"
            ).rstrip()
            for row in [header, *rows]
        ),
    ]
    if draft.todos:
        lines.append(f"To fill in before the spec loads: {', '.join(draft.todos)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YAML with comments


def _render_yaml(draft: SpecDraft) -> str:
    raw = draft.raw
    lines = [
        *_header(draft),
        f"name: {_flow(raw['name'])}",
        "target:",
    ]
    for key, value in raw["target"].items():
        lines += _comments(draft.target_notes.get(key, []), indent=2)
        lines.append(f"  {key}: {_flow(value)}")
    lines.append("sensitive:")
    for index, attribute in enumerate(raw["sensitive"]):
        lines += _comments(draft.sensitive_notes.get(index, []), indent=2)
        lines.append(f"  - column: {_flow(attribute['column'])}")
        lines.append(f"    privileged: {_flow(attribute['privileged'])}")
    lines += [
        "# The fewest rows the table, and each group and (group, label) cell, must have.",
        f"min_rows: {raw['min_rows']}",
        f"min_group_rows: {raw['min_group_rows']}",
        *_columns_comments(),
        "columns:",
        *_indented(_block(raw["columns"]), 2),
        "# Say where the data comes from, for the published dataset card:",
        "# provenance:",
        "#   source: ...",
        "#   licence: ...",
        "#   citation: ...",
    ]
    return "\n".join(lines) + "\n"


def _header(draft: SpecDraft) -> list[str]:
    origin = f" from {draft.source}" if draft.source else ""
    todos = draft.todos
    status = (
        f"It does not load until every TODO is replaced ({', '.join(todos)})."
        if todos
        else "Check every line marked CHECK before relying on it."
    )
    return _comments(
        [
            f"Dataset spec drafted by fairdistill inspect{origin} ({draft.rows:,} rows, "
            f"{draft.width:,} columns). Lines marked CHECK are guesses from column names and "
            f"value counts; TODO marks what the data cannot tell. {status}"
        ],
        indent=0,
        hanging="",
    )


def _columns_comments() -> list[str]:
    return [
        "# Inferred from the data: type, whether values may be missing, observed min/max (widen",
        "# them if new data may go further). Columns with role: ignore are not modelled (the",
        "# reason says why); delete role and reason to model one, or add role: ignore to drop",
        "# a column, e.g. one that leaks the label. Categories are read from the data each run.",
    ]


def _comments(notes: list[str], *, indent: int, hanging: str = "  ") -> list[str]:
    prefix = f"{' ' * indent}# "
    return [
        line
        for note in notes
        for line in textwrap.wrap(
            note, width=COMMENT_WIDTH, initial_indent=prefix, subsequent_indent=prefix + hanging
        )
    ]


def _block(value: object) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1_000_000)


def _indented(text: str, indent: int) -> list[str]:
    return [f"{' ' * indent}{line}" for line in text.rstrip("\n").splitlines()]


def _flow(value: object) -> str:
    """One value as YAML on one line, quoted where YAML would misread it ('1', 'yes')."""
    dumped = yaml.safe_dump(
        [value], default_flow_style=True, allow_unicode=True, width=1_000_000
    ).strip()
    return dumped[1:-1]
