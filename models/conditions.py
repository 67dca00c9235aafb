"""Conditions on generated rows: ``age >= 60``, ``workclass in [Private, Self-emp-inc]``.

A condition is one column, one operator and its value(s), written as text by a user (on
the command line or in a YAML list) and parsed here without ``eval``:

- ``==``, ``!=``, ``>=``, ``>``, ``<=``, ``<`` with one value;
- ``in [a, b]``, ``not in [a, b]`` with a bracketed list;
- ``between a and b`` (both ends included).

A value may be quoted ('…' or "…") when it holds a comma, a bracket or spaces at its ends;
otherwise it is taken as written (``income == >50K`` compares with the text ``>50K``).

Conditions are bound to what the generator learnt (:func:`bind_conditions`): values are
typed by the column's codec (category text, numbers), and a condition that no generated
row can meet is refused up front with one error naming it: an unknown column (with the
closest name), a column the spec ignores, a category never seen in training, a range
outside the values the codec decodes to (its training quantiles), or conditions on one
column that contradict each other. A null never meets a condition, as in SQL.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from fairdistill.models.codec import CategoricalColumn, QuantileNormalColumn, TabularCodec
from fairdistill.models.errors import FairdistillError

Operator = Literal["==", "!=", ">=", ">", "<=", "<", "in", "not in", "between"]
_CONDITION = re.compile(
    r"^\s*(?:`(?P<quoted>[^`]+)`|(?P<column>[A-Za-z_][\w.\-]*))\s*"
    r"(?P<op>==|!=|>=|<=|>|<|not\s+in\b|in\b|between\b)\s*(?P<rest>.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_BETWEEN = re.compile(r"^(?P<low>.+?)\s+and\s+(?P<high>.+)$", re.IGNORECASE | re.DOTALL)
CONDITION_HINT = (
    "write 'column op value' with op one of ==, !=, >=, >, <=, <, e.g. 'age >= 60', "
    "'column in [a, b]', 'column not in [a, b]' or 'column between 30 and 50'"
)


class ConditionError(FairdistillError):
    """A condition cannot be parsed, names nothing the generator knows, or cannot be met."""


@dataclass(frozen=True)
class ParsedCondition:
    """A condition as written: its column, operator and value texts, not yet typed."""

    text: str
    column: str
    op: Operator
    values: tuple[str, ...]


def parse_condition(text: str) -> ParsedCondition:
    """Split ``text`` into column, operator and value texts; refuse anything else."""
    match = _CONDITION.match(text)
    if not match or not match.group("rest"):
        raise ConditionError(
            f"Cannot read the condition '{text.strip()}'",
            rule="condition-syntax",
            hint=CONDITION_HINT,
        )
    column = match.group("quoted") or match.group("column")
    op = " ".join(match.group("op").lower().split())
    rest = match.group("rest")
    if op in ("in", "not in"):
        values = _list_values(text, rest)
    elif op == "between":
        bounds = _BETWEEN.match(rest)
        if not bounds:
            raise ConditionError(
                f"Cannot read the condition '{text.strip()}': 'between' needs 'LOW and HIGH'",
                column=column,
                rule="condition-syntax",
                hint="write e.g. 'age between 30 and 50'",
            )
        values = (_scalar(text, bounds.group("low")), _scalar(text, bounds.group("high")))
    else:
        values = (_scalar(text, rest),)
    return ParsedCondition(text=" ".join(text.split()), column=column, op=op, values=values)  # type: ignore[arg-type]


def _list_values(text: str, rest: str) -> tuple[str, ...]:
    if not (rest.startswith("[") and rest.endswith("]")):
        raise ConditionError(
            f"Cannot read the condition '{text.strip()}': a set needs brackets",
            rule="condition-syntax",
            hint="write e.g. 'workclass in [Private, Self-emp-inc]'",
        )
    items = _split_items(text, rest[1:-1])
    if not items:
        raise ConditionError(
            f"The condition '{text.strip()}' lists no values",
            rule="condition-syntax",
            hint="put at least one value between the brackets",
        )
    return tuple(items)


def _split_items(text: str, inner: str) -> list[str]:
    """Comma-separated items, each bare or quoted; a quoted item may hold commas."""
    items, position = [], 0
    item = re.compile(
        r"""\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>[^,'"]*?))\s*(?:,|$)"""
    )
    while position < len(inner):
        found = item.match(inner, position)
        if not found or found.end() == position:
            raise ConditionError(
                f"Cannot read the values of the condition '{text.strip()}'",
                rule="condition-syntax",
                hint="separate values with commas; quote a value that holds a comma",
            )
        value = next(
            group for group in found.group("single", "double", "bare") if group is not None
        )
        if value == "" and found.group("bare") is not None:
            raise ConditionError(
                f"The condition '{text.strip()}' has an empty value in its list",
                rule="condition-syntax",
                hint="remove the extra comma, or quote an empty value as ''",
            )
        items.append(value)
        position = found.end()
    return items


def _scalar(text: str, raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if not raw:
        raise ConditionError(
            f"The condition '{text.strip()}' has no value",
            rule="condition-syntax",
            hint=CONDITION_HINT,
        )
    return raw


@dataclass(frozen=True)
class Condition:
    """A condition bound to a column the generator produces, its values typed.

    ``kind``: ``category`` (features, sensitive attributes and the target; values are
    text) or ``number`` (values are floats).
    """

    text: str
    column: str
    op: Operator
    values: tuple[str, ...] | tuple[float, ...]
    kind: Literal["category", "number"]

    def mask(self, frame: pl.DataFrame) -> np.ndarray:
        """Which rows of ``frame`` meet the condition (a null meets none)."""
        series = frame.get_column(self.column)
        series = series.cast(pl.String) if self.kind == "category" else series.cast(pl.Float64)
        values = list(self.values)
        expression = {
            "==": lambda s: s == values[0],
            "!=": lambda s: s != values[0],
            ">=": lambda s: s >= values[0],
            ">": lambda s: s > values[0],
            "<=": lambda s: s <= values[0],
            "<": lambda s: s < values[0],
            "in": lambda s: s.is_in(values),
            "not in": lambda s: ~s.is_in(values),
            "between": lambda s: (s >= values[0]) & (s <= values[1]),
        }[self.op](series)
        # A null compares to null, and is_in gives False for it: both count as not met.
        return expression.fill_null(False).to_numpy() & series.is_not_null().to_numpy()

    def allowed_levels(self, levels: Sequence[str]) -> set[str]:
        """The levels of a categorical column this condition lets through."""
        values = set(self.values)  # type: ignore[arg-type]
        if self.op in ("==", "in"):
            return {level for level in levels if level in values}
        if self.op in ("!=", "not in"):
            return {level for level in levels if level not in values}
        raise ValueError(f"operator {self.op} on a category")


@dataclass(frozen=True)
class ConditionSet:
    """Conditions that all hold at once; the generator draws rows meeting every one."""

    conditions: tuple[Condition, ...]

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @property
    def texts(self) -> list[str]:
        return [condition.text for condition in self.conditions]

    def describe(self) -> str:
        return " and ".join(f"'{text}'" for text in self.texts) or "no condition"

    def mask(self, frame: pl.DataFrame) -> np.ndarray:
        keep = np.ones(frame.height, dtype=bool)
        for condition in self.conditions:
            keep &= condition.mask(frame)
        return keep

    def on(self, column: str) -> list[Condition]:
        return [condition for condition in self.conditions if condition.column == column]

    def allowed_sensitive_levels(self, codec: TabularCodec) -> list[np.ndarray]:
        """Per sensitive attribute, the level indices the conditions allow (all by default)."""
        allowed = []
        for column, levels in zip(codec.sensitive_columns, codec.sensitive_levels, strict=True):
            kept = set(levels)
            for condition in self.on(column):
                kept &= condition.allowed_levels(levels)
            allowed.append(np.asarray([i for i, level in enumerate(levels) if level in kept]))
        return allowed


def bind_conditions(
    texts: Iterable[str], codec: TabularCodec, *, ignored_columns: Iterable[str] = ()
) -> ConditionSet:
    """Parse and type every condition against the generator's codec; refuse what cannot hold."""
    parsed = [parse_condition(text) for text in texts]
    domains = column_domains(codec)
    ignored = set(ignored_columns)
    conditions = tuple(_bind(item, domains, ignored) for item in parsed)
    for column in dict.fromkeys(condition.column for condition in conditions):
        _check_together([c for c in conditions if c.column == column], domains[column])
    return ConditionSet(conditions)


@dataclass(frozen=True)
class CategoryDomain:
    column: str
    levels: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class NumberDomain:
    """The values a numeric column decodes to: its training quantiles' range."""

    column: str
    low: float
    high: float
    integer: bool


Domain = CategoryDomain | NumberDomain


def column_domains(codec: TabularCodec) -> dict[str, Domain]:
    """What each generated column can hold, as the codec decodes it."""
    domains: dict[str, Domain] = {}
    for column in codec.columns:
        if isinstance(column, CategoricalColumn):
            domains[column.column] = CategoryDomain(column.column, column.levels, "feature")
        elif isinstance(column, QuantileNormalColumn):
            domains[column.column] = _number_domain(column)
    for name, levels in zip(codec.sensitive_columns, codec.sensitive_levels, strict=True):
        domains[name] = CategoryDomain(name, tuple(levels), "sensitive attribute")
    domains[codec.target_column] = CategoryDomain(
        codec.target_column, tuple(codec.label_levels), "target"
    )
    return domains


def _number_domain(column: QuantileNormalColumn) -> NumberDomain:
    # Decoding interpolates between the training quantiles (or takes the spike value), clips
    # to the spec's bounds and rounds integers: nothing outside that range is ever produced.
    low, high = column.quantiles[0], column.quantiles[-1]
    if column.spike is not None:
        low, high = min(low, column.spike), max(high, column.spike)
    if column.lower is not None:
        low = max(low, column.lower)
    if column.upper is not None:
        high = min(high, column.upper)
    return NumberDomain(column.column, low, high, column.integer)


def _bind(item: ParsedCondition, domains: dict[str, Domain], ignored: set[str]) -> Condition:
    domain = domains.get(item.column)
    if domain is None:
        raise _unknown_column(item, domains, ignored)
    if isinstance(domain, CategoryDomain):
        return _bind_category(item, domain)
    return _bind_number(item, domain)


def _unknown_column(
    item: ParsedCondition, domains: dict[str, Domain], ignored: set[str]
) -> ConditionError:
    if item.column in ignored:
        return ConditionError(
            f"The condition '{item.text}' is on '{item.column}', a column the spec ignores: "
            "the generator does not produce it",
            column=item.column,
            rule="condition-column",
            hint="condition on a column the generated rows have",
        )
    closest = difflib.get_close_matches(item.column, list(domains), n=1, cutoff=0.5)
    suggestion = f"did you mean '{closest[0]}'? " if closest else ""
    return ConditionError(
        f"The condition '{item.text}' names no column of the generated rows",
        column=item.column,
        rule="condition-column",
        hint=f"{suggestion}the columns are {', '.join(domains)}",
    )


def _bind_category(item: ParsedCondition, domain: CategoryDomain) -> Condition:
    if item.op not in ("==", "!=", "in", "not in"):
        raise ConditionError(
            f"The condition '{item.text}' orders '{item.column}', a categorical "
            f"{domain.role}, whose values have no order",
            column=item.column,
            rule="condition-operator",
            hint="use ==, !=, in [...] or not in [...] on a categorical column",
        )
    for value in item.values:
        if value not in domain.levels:
            closest = difflib.get_close_matches(value, list(domain.levels), n=1, cutoff=0.5)
            suggestion = f"did you mean '{closest[0]}'? " if closest else ""
            raise ConditionError(
                f"The condition '{item.text}' names the category '{value}', which '{item.column}' "
                "never took in the training data",
                column=item.column,
                rule="condition-category",
                hint=f"{suggestion}its categories are {', '.join(domain.levels[:20])}",
            )
    return Condition(item.text, item.column, item.op, item.values, "category")


def _bind_number(item: ParsedCondition, domain: NumberDomain) -> Condition:
    numbers = []
    for value in item.values:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConditionError(
                f"The condition '{item.text}' compares the numeric column '{item.column}' with "
                f"'{value}', which is not a number",
                column=item.column,
                rule="condition-value",
                hint="give a finite number, e.g. 'age >= 60'",
            )
        numbers.append(number)
    if item.op in ("==", "in") and not domain.integer:
        raise ConditionError(
            f"The condition '{item.text}' asks a continuous column for exact values, which "
            "generated rows meet with probability zero",
            column=item.column,
            rule="condition-operator",
            hint="give a range instead, e.g. 'column between 1.5 and 2.5'",
        )
    condition = Condition(item.text, item.column, item.op, tuple(numbers), "number")
    if not _feasible([condition], domain, support=True):
        raise ConditionError(
            f"The condition '{item.text}' lies outside what the generator produces: "
            f"'{item.column}' ranged over [{_number(domain.low)}, {_number(domain.high)}] in "
            "the training data",
            column=item.column,
            rule="condition-support",
            hint="ask for values inside the training range; the generator does not extrapolate",
        )
    return condition


def _check_together(conditions: list[Condition], domain: Domain) -> None:
    """Refuse conditions on one column that no value meets all at once."""
    if len(conditions) < 2:
        return
    texts = " and ".join(f"'{c.text}'" for c in conditions)
    if isinstance(domain, CategoryDomain):
        kept = set(domain.levels)
        for condition in conditions:
            kept &= condition.allowed_levels(domain.levels)
        if not kept:
            raise _contradiction(texts, domain.column)
        return
    if not _feasible(conditions, domain, support=False):
        raise _contradiction(texts, domain.column)
    if not _feasible(conditions, domain, support=True):
        raise ConditionError(
            f"The conditions {texts} together leave no value inside what the generator "
            f"produces ('{domain.column}' ranged over [{_number(domain.low)}, "
            f"{_number(domain.high)}] in the training data)",
            column=domain.column,
            rule="condition-support",
            hint="widen the range to overlap the training values",
        )


def _contradiction(texts: str, column: str) -> ConditionError:
    return ConditionError(
        f"The conditions {texts} contradict each other: no value of '{column}' meets them all",
        column=column,
        rule="condition-contradiction",
        hint="drop or change one of them",
    )


def _feasible(conditions: list[Condition], domain: NumberDomain, *, support: bool) -> bool:
    """Whether some value meets every condition (and, with ``support``, can be generated).

    Integers are checked on the integers; a continuous column on an interval.
    """
    low, high = (domain.low, domain.high) if support else (-math.inf, math.inf)
    low_open = high_open = False
    points: set[float] | None = None
    excluded: set[float] = set()
    for condition in conditions:
        values = [float(v) for v in condition.values]
        if condition.op in (">=", ">") and values[0] >= low:
            low, low_open = values[0], condition.op == ">" or (values[0] == low and low_open)
        elif condition.op in ("<=", "<") and values[0] <= high:
            high, high_open = values[0], condition.op == "<" or (values[0] == high and high_open)
        elif condition.op == "between":
            if values[0] > low:
                low, low_open = values[0], False
            if values[1] < high:
                high, high_open = values[1], False
        elif condition.op in ("==", "in"):
            points = set(values) if points is None else points & set(values)
        elif condition.op in ("!=", "not in"):
            excluded |= set(values)
    return _some_value(low, high, low_open, high_open, points, excluded, domain.integer)


def _some_value(
    low: float,
    high: float,
    low_open: bool,
    high_open: bool,
    points: set[float] | None,
    excluded: set[float],
    integer: bool,
) -> bool:
    def inside(value: float) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below and value not in excluded and (not integer or value.is_integer())

    if points is not None:
        return any(inside(point) for point in points)
    if integer:
        return any(
            inside(value) for value in _integers_near(low, high, low_open, high_open, excluded)
        )
    if low > high or (low == high and (low_open or high_open)):
        return False
    return low < high or low not in excluded


def _integers_near(
    low: float, high: float, low_open: bool, high_open: bool, excluded: set[float]
) -> list[float]:
    """The first integers inside the range from one finite end: one more than the
    excluded values, so that one of them is not excluded if the range holds enough."""
    count = len(excluded) + 1
    if math.isfinite(low):
        first = math.floor(low) + 1 if low_open or not low.is_integer() else int(low)
        return [float(first + step) for step in range(count)]
    if math.isfinite(high):
        last = math.ceil(high) - 1 if high_open or not high.is_integer() else int(high)
        return [float(last - step) for step in range(count)]
    return [float(step) for step in range(count)]


def _number(value: float) -> str:
    return f"{value:g}"


def read_condition_file(text: str, source: str) -> list[str]:
    """The conditions of a YAML file: a list of condition strings."""
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConditionError(
            f"The conditions file is not valid YAML ({error.__class__.__name__})",
            file=source,
            rule="condition-file",
            hint="write a YAML list of conditions, e.g. '- age >= 60'",
        ) from error
    if loaded is None:
        return []
    if not isinstance(loaded, list) or not all(isinstance(item, str) for item in loaded):
        raise ConditionError(
            "The conditions file must hold a list of condition strings",
            file=source,
            rule="condition-file",
            hint="write e.g. '- age >= 60' and '- \"workclass in [Private]\"', one per line",
        )
    return loaded
