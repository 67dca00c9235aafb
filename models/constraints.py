"""Cross-column rules a dataset spec declares, checked on the input, guaranteed on the output.

A spec's ``constraints:`` list holds rules the real rows obey and the synthetic rows must
obey too. Three forms are understood (column names are bare words, or in backticks when
they hold spaces or other characters):

- ``end >= start`` (also ``>``, ``<=``, ``<``): a comparison between two numeric columns.
- ``capital_gain == 0 or capital_loss == 0``: at least one of two numeric columns holds its
  number (any two numbers; with zeros: at most one of the two is non-zero).
- ``education_num determined by education``: each value of the second column goes with one
  value of the first (categorical or integer columns; the determining column may also be
  the target or a sensitive attribute).

A row with a missing value in a compared column obeys a comparison and an ``or`` rule (the
rule cannot be judged on it); in a ``determined by`` rule a missing value is a value.

Generated rows are repaired, never dropped, by :func:`enforce` (each repair keeps the
columns' bounds and rounding; see the repair functions for the choices):

- comparison: the two values swap places when each fits the other column; else the larger
  side moves to the smaller one (the least step past it for ``>``/``<``);
- ``or`` rule: the value smaller relative to its column's typical size takes its number;
- ``determined by``: the determined column takes the value the training rows pair with the
  drawn determining value.

The rules and what they learn from the training rows are plain JSON
(:meth:`FittedConstraints.to_dict`), stored inside the codec so every decoder of generated
rows, the registered model included, applies the same repairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fairdistill.models.constraint_rules import (
    Comparison,
    Determined,
    EitherEquals,
    Rule,
    RuleSyntaxError,
    ValueRange,
    broken_rows,
    column_text,
    describe_rows,
    parse_rule,
    rule_breaches,
    usual_pairs,
)
from fairdistill.models.errors import ConstraintError
from fairdistill.models.spec import ColumnSpec, DatasetSpec

__all__ = [
    "Comparison",
    "Determined",
    "EitherEquals",
    "FittedConstraints",
    "FittedRule",
    "Rule",
    "RuleSyntaxError",
    "breach_metrics",
    "broken_in_output",
    "broken_rows",
    "describe_rows",
    "enforce",
    "parse_rule",
    "rule_breaches",
    "spec_rules",
]

# Repairs of one rule can undo another's when they share a column; a few passes settle any
# rules that can hold together, and a rule still broken after them is an error, not a drop.
REPAIR_PASSES = 4


def breach_metric(rule: Rule) -> str:
    return f"constraints.{rule.name}.broken_rows"


def repair_metric(rule_name: str) -> str:
    return f"constraints.{rule_name}.repaired_share"


def breach_metrics(frame: pl.DataFrame, rules: Sequence[Rule]) -> dict[str, float]:
    """``constraints.<name>.broken_rows`` of each rule on ``frame`` (synthetic rows: 0)."""
    counts = rule_breaches(frame, rules)
    return {breach_metric(rule): float(counts[rule.name]) for rule in rules}


def broken_in_output(metrics: Mapping[str, float], rules: Sequence[Rule]) -> list[Rule]:
    """The rules the evaluated synthetic rows break (none, as repairs guarantee)."""
    return [rule for rule in rules if metrics.get(breach_metric(rule), 0.0) > 0]


# --------------------------------------------------------------------- what rules learn


def _value_range(column_spec: ColumnSpec) -> ValueRange:
    return ValueRange(column_spec.type == "integer", column_spec.min, column_spec.max)


@dataclass(frozen=True)
class FittedRule:
    """A rule with what its repair needs from the spec and the training rows.

    Comparison: the value range of both columns. ``or`` rule: the value ranges and each
    column's typical distance from its number. ``determined by``: the pairs of the training
    rows, as text, and whether the determinant is an integer (an unseen integer then takes
    the pair of the nearest seen one).
    """

    rule: Rule
    ranges: dict[str, ValueRange] = field(default_factory=dict)
    scales: tuple[float, float] = (1.0, 1.0)
    pairs: dict[str | None, str | None] = field(default_factory=dict)
    integer_key: bool = False
    # The dependent value of a determinant the training rows never held (a null from a
    # nullable column that had none): the most common one, so the rule still holds.
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rule": self.rule.text, "name": self.rule.name}
        if isinstance(self.rule, Determined):
            state["pairs"] = [[key, value] for key, value in self.pairs.items()]
            state["integer_key"] = self.integer_key
            state["fallback"] = self.fallback
        else:
            state["ranges"] = {name: r.to_dict() for name, r in self.ranges.items()}
        if isinstance(self.rule, EitherEquals):
            state["scales"] = list(self.scales)
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> FittedRule:
        ranges = {name: ValueRange.from_dict(r) for name, r in state.get("ranges", {}).items()}
        scales = tuple(state.get("scales", (1.0, 1.0)))
        return cls(
            rule=parse_rule(state["rule"], state["name"]),
            ranges=ranges,
            scales=(float(scales[0]), float(scales[1])),
            pairs={key: value for key, value in state.get("pairs", [])},
            integer_key=bool(state.get("integer_key", False)),
            fallback=state.get("fallback"),
        )


@dataclass(frozen=True)
class FittedConstraints:
    """Every rule of a spec, fitted on the training rows; empty when the spec has none."""

    rules: tuple[FittedRule, ...] = ()

    @classmethod
    def fit(cls, frame: pl.DataFrame, spec: DatasetSpec) -> FittedConstraints:
        return cls(tuple(_fit_rule(frame, spec, rule) for rule in spec_rules(spec)))

    def to_dict(self) -> list[dict[str, Any]]:
        return [rule.to_dict() for rule in self.rules]

    @classmethod
    def from_dict(cls, state: Sequence[Mapping[str, Any]]) -> FittedConstraints:
        return cls(tuple(FittedRule.from_dict(item) for item in state))


def spec_rules(spec: DatasetSpec) -> list[Rule]:
    """The parsed rules of a spec's ``constraints:`` list."""
    return list(spec.rules)


def _fit_rule(frame: pl.DataFrame, spec: DatasetSpec, rule: Rule) -> FittedRule:
    if isinstance(rule, Determined):
        pairs = pl.DataFrame(
            {
                "key": column_text(frame, rule.determinant),
                "value": column_text(frame, rule.dependent),
            }
        )
        usual = usual_pairs(pairs)
        integer_key = rule.determinant in spec.columns and (
            spec.columns[rule.determinant].type == "integer"
        )
        mapping = dict(zip(usual.get_column("key"), usual.get_column("usual"), strict=True))
        common = pairs.get_column("value").drop_nulls().mode().sort()
        fallback = common[0] if common.len() else None
        return FittedRule(rule, pairs=mapping, integer_key=integer_key, fallback=fallback)
    ranges = {column: _value_range(spec.columns[column]) for column in rule.columns}
    if isinstance(rule, EitherEquals):
        scales = (
            _typical_distance(frame.get_column(rule.first), rule.first_value),
            _typical_distance(frame.get_column(rule.second), rule.second_value),
        )
        return FittedRule(rule, ranges=ranges, scales=scales)
    return FittedRule(rule, ranges=ranges)


def _typical_distance(series: pl.Series, value: float) -> float:
    """The median distance from ``value`` of the values that differ from it (1 if none):
    the size a value of this column usually has when it is not the rule's number."""
    values = series.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    distances = np.abs(values[values != value] - value)
    typical = float(np.median(distances)) if distances.size else 1.0
    return typical if math.isfinite(typical) and typical > 0 else 1.0


# -------------------------------------------------------------------------- the repairs


def enforce(
    frame: pl.DataFrame, constraints: FittedConstraints
) -> tuple[pl.DataFrame, dict[str, int]]:
    """``frame`` with every row made to obey every rule, and how many rows each rule changed.

    No row is dropped or added. Raises :class:`ConstraintError` if rules that share a column
    keep undoing each other's repairs, or if bounds leave a rule no value to repair with.
    """
    repaired = {
        fitted.rule.name: np.zeros(frame.height, dtype=bool) for fitted in constraints.rules
    }
    rules = [fitted.rule for fitted in constraints.rules]
    # Always one pass: a 'determined by' rule is repaired to the training rows' pairs even
    # where the generated rows happen to agree among themselves.
    for _ in range(REPAIR_PASSES):
        for fitted in constraints.rules:
            frame, changed = _repair(frame, fitted)
            repaired[fitted.rule.name] |= changed
        if not any(broken_rows(frame, rule).any() for rule in rules):
            break
    still = rule_breaches(frame, rules)
    broken = {name: count for name, count in still.items() if count}
    if broken:
        name, count = next(iter(broken.items()))
        text = next(f.rule.text for f in constraints.rules if f.rule.name == name)
        raise ConstraintError(
            f"{count} generated rows still break the constraint '{text}' after repair",
            rule="constraint-repair",
            hint="check that the spec's constraints and column bounds can all hold at once "
            "(rules sharing a column must not contradict each other)",
        )
    return frame, {name: int(mask.sum()) for name, mask in repaired.items()}


def _repair(frame: pl.DataFrame, fitted: FittedRule) -> tuple[pl.DataFrame, np.ndarray]:
    rule = fitted.rule
    if isinstance(rule, Determined):
        return _repair_determined(frame, fitted, rule)
    broken = broken_rows(frame, rule).to_numpy()
    if not broken.any():
        return frame, broken
    if isinstance(rule, EitherEquals):
        return _repair_either(frame, fitted, rule, broken), broken
    return _repair_comparison(frame, fitted, rule, broken), broken


def _repair_determined(
    frame: pl.DataFrame, fitted: FittedRule, rule: Determined
) -> tuple[pl.DataFrame, np.ndarray]:
    """The dependent column takes the value the training rows pair with the row's
    determinant: the determinant was drawn by the model with the rest of the row, and once
    it is known the dependent value says nothing more. Every value written is one real rows
    hold with that determinant, so no value the data never had appears."""
    keys = column_text(frame, rule.determinant)
    if fitted.integer_key:
        keys = _nearest_seen(keys, fitted)
    known = {key: value for key, value in fitted.pairs.items() if key is not None}
    expected = keys.replace_strict(known, default=fitted.fallback, return_dtype=pl.String)
    null_value = fitted.pairs.get(None, fitted.fallback)
    expected = pl.select(
        pl.when(keys.is_null()).then(pl.lit(null_value, pl.String)).otherwise(expected)
    ).to_series()
    current = frame.get_column(rule.dependent)
    changed = column_text(frame, rule.dependent).ne_missing(expected).to_numpy()
    new = expected.cast(current.dtype) if current.dtype.is_numeric() else expected
    return frame.with_columns(new.alias(rule.dependent)), changed


def _nearest_seen(keys: pl.Series, fitted: FittedRule) -> pl.Series:
    """Integer determinants as the nearest value the training rows held (ties: the lower):
    a decoded integer may fall between the values real rows have."""
    seen = sorted((float(key), key) for key in fitted.pairs if key is not None)
    if not seen:
        return keys
    numbers = np.asarray([number for number, _ in seen])
    texts = np.asarray([text for _, text in seen], dtype=object)
    values = keys.cast(pl.Float64).to_numpy()
    position = np.searchsorted(numbers, values)
    left = np.clip(position - 1, 0, numbers.size - 1)
    right = np.clip(position, 0, numbers.size - 1)
    with np.errstate(invalid="ignore"):
        take_left = values - numbers[left] <= numbers[right] - values
    nearest = np.where(take_left, left, right)
    replaced = np.where(np.isnan(values), None, texts[nearest])
    return pl.Series(keys.name, replaced.tolist(), dtype=pl.String)


def _repair_either(
    frame: pl.DataFrame, fitted: FittedRule, rule: EitherEquals, broken: np.ndarray
) -> pl.DataFrame:
    """The value smaller relative to its column's typical size takes its number: the row
    then moves least in each column's own units, and keeps its large, telling value (a
    capital gain of 12,000 with a loss of 40 keeps the gain). Both numbers lie within the
    columns' bounds and rounding (checked when the spec was read)."""
    first = frame.get_column(rule.first).cast(pl.Float64).to_numpy()
    second = frame.get_column(rule.second).cast(pl.Float64).to_numpy()
    first_size = np.abs(first - rule.first_value) / fitted.scales[0]
    second_size = np.abs(second - rule.second_value) / fitted.scales[1]
    set_first = broken & (first_size <= second_size)
    set_second = broken & ~set_first
    first, second = first.copy(), second.copy()
    first[set_first] = rule.first_value
    second[set_second] = rule.second_value
    return _write_back(frame, {rule.first: first, rule.second: second})


def _repair_comparison(
    frame: pl.DataFrame, fitted: FittedRule, rule: Comparison, broken: np.ndarray
) -> pl.DataFrame:
    """Swap the two values where each fits the other column, else move the high side up.

    A swap keeps both drawn values in the table and the gap between them (a duration stays
    as long, only its sign is fixed), so the pair's spread is kept; clamping one side onto
    the other would instead pile rows onto ``high == low``, a spike real data seldom has.
    A swap cannot serve equal values under ``>``, nor values one column's bounds or
    rounding refuse: then the high side moves to the least value that obeys (the low side
    moves down where the high column's bounds refuse that).
    """
    high_range, low_range = fitted.ranges[rule.high], fitted.ranges[rule.low]
    high = frame.get_column(rule.high).cast(pl.Float64).to_numpy().copy()
    low = frame.get_column(rule.low).cast(pl.Float64).to_numpy().copy()
    swap = broken & (high != low) & high_range.admits(low) & low_range.admits(high)
    high[swap], low[swap] = low[swap].copy(), high[swap].copy()
    rest = broken & ~swap
    raised = _least_above(low, high_range.integer, rule.strict)
    move_high = rest & high_range.admits(raised)
    high[move_high] = raised[move_high]
    lowered = _most_below(high, low_range.integer, rule.strict)
    move_low = rest & ~move_high & low_range.admits(lowered)
    low[move_low] = lowered[move_low]
    return _write_back(frame, {rule.high: high, rule.low: low})


def _least_above(values: np.ndarray, integer: bool, strict: bool) -> np.ndarray:
    """The least value (whole if ``integer``) at or above ``values`` (above if strict)."""
    if integer:
        return np.floor(values) + 1 if strict else np.ceil(values)
    return np.nextafter(values, np.inf) if strict else values.copy()


def _most_below(values: np.ndarray, integer: bool, strict: bool) -> np.ndarray:
    if integer:
        return np.ceil(values) - 1 if strict else np.floor(values)
    return np.nextafter(values, -np.inf) if strict else values.copy()


def _write_back(frame: pl.DataFrame, columns: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """Repaired float arrays in their columns' own types (NaN: the nulls left as they were)."""
    series = [
        pl.Series(name, values, dtype=pl.Float64).fill_nan(None).cast(frame.schema[name])
        for name, values in columns.items()
    ]
    return frame.with_columns(series)
