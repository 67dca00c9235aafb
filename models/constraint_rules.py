"""The rules of a spec's ``constraints:`` list: their forms, the parser, and which rows
break them. Plain text in, plain frames in; how rules are fitted and repaired is
:mod:`fairdistill.models.constraints`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

SUPPORTED_FORMS = (
    "'A >= B' (or >, <=, <) between two numeric columns; 'A == 0 or B == 0' (any two "
    "numbers: at least one of the two numeric columns holds its number); 'B determined by "
    "A' (categorical or integer columns: each value of A goes with one value of B). Write a "
    "column name with spaces in backticks: `hours per week`"
)
CHECK_CONSTRAINT = "spec-constraint"
_FLIPPED = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}
_TOKEN = re.compile(
    r"\s*(?:(?P<quoted>`[^`]+`)|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<op>>=|<=|==|!=|>|<)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>\S))"
)
_KEYWORDS = frozenset({"or", "and", "determined", "by", "not"})
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class RuleSyntaxError(ValueError):
    """A rule is not one of the supported forms; the message says which forms are."""


# ----------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Comparison:
    """``high >= low`` (``strict``: ``high > low``); ``a <= b`` is read as ``b >= a``."""

    text: str
    name: str
    high: str
    low: str
    strict: bool

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.high, self.low)

    def broken(self) -> pl.Expr:
        high, low = pl.col(self.high), pl.col(self.low)
        return (high <= low) if self.strict else (high < low)


@dataclass(frozen=True)
class EitherEquals:
    """``a == value_a or b == value_b``."""

    text: str
    name: str
    first: str
    first_value: float
    second: str
    second_value: float

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.first, self.second)

    def broken(self) -> pl.Expr:
        # Kleene logic: a missing value makes the conjunction null or false, never true.
        return (pl.col(self.first) != self.first_value) & (pl.col(self.second) != self.second_value)


@dataclass(frozen=True)
class Determined:
    """``dependent determined by determinant``: one dependent value per determinant value."""

    text: str
    name: str
    dependent: str
    determinant: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.dependent, self.determinant)


Rule = Comparison | EitherEquals | Determined


# ---------------------------------------------------------------------------- the parser


def parse_rule(text: str, name: str | None = None) -> Rule:
    """The rule written as ``text``; raises :class:`RuleSyntaxError` for any other form."""
    tokens = _tokens(text)
    shape = [
        kind if kind != "word" or value.lower() not in _KEYWORDS else value.lower()
        for kind, value in tokens
    ]
    values = [value for _, value in tokens]
    rule_name = name or default_name(text)
    if name is not None and not _NAME.match(name):
        raise RuleSyntaxError(
            f"constraint name '{name}' may hold only letters, digits, '_' and '-'"
        )
    if shape == ["column", "op", "column"] and values[1] in _FLIPPED:
        return _comparison(text, rule_name, values[0], values[1], values[2])
    if shape == ["column", "op", "number", "or", "column", "op", "number"] and (
        values[1] == values[5] == "=="
    ):
        return EitherEquals(
            text, rule_name, values[0], float(values[2]), values[4], float(values[6])
        )
    if shape == ["column", "determined", "by", "column"]:
        return Determined(text, rule_name, values[0], values[3])
    raise RuleSyntaxError(f"constraint '{text}' is not a supported form{_form_note(shape)}")


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        value = match.group(kind)
        if kind == "other":
            raise RuleSyntaxError(f"constraint '{text}' holds '{value}', which no rule uses")
        if kind == "quoted":
            kind, value = "column", value[1:-1]
        elif kind == "word" and value.lower() not in _KEYWORDS:
            kind = "column"
        found.append((kind, value))
    return found


def _form_note(shape: list[str]) -> str:
    """Why a near miss is not a rule, where that helps more than the list of forms."""
    if shape in (["column", "op", "number"], ["number", "op", "column"]):
        return " (a bound on one column is its min or max under columns: in the spec)"
    if "and" in shape:
        return " ('and' joins no rule: write each rule as its own entry)"
    return ""


def _comparison(text: str, name: str, left: str, op: str, right: str) -> Comparison:
    if op in ("<=", "<"):
        left, right, op = right, left, _FLIPPED[op]
    return Comparison(text, name, high=left, low=right, strict=op == ">")


def default_name(text: str) -> str:
    """A rule's name when the spec gives none, fit for a metric name: ``end >= start`` ->
    ``end_ge_start``."""
    words = {">=": " ge ", "<=": " le ", "==": " eq ", ">": " gt ", "<": " lt "}
    for op, word in words.items():
        text = text.replace(op, word)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "constraint"


# ---------------------------------------------------------------- rules against the spec
# ----------------------------------------------------------------- checking rows on rules


def broken_rows(frame: pl.DataFrame, rule: Rule) -> pl.Series:
    """Which rows of ``frame`` break ``rule`` (a boolean series, never null).

    A ``determined by`` rule is judged within ``frame``: a row breaks it when its dependent
    value is not the one most rows with its determinant value hold (ties: the smallest).
    """
    if isinstance(rule, Determined):
        values = column_text(frame, rule.dependent)
        return values.ne_missing(_usual_per_row(frame, rule)).alias(rule.name)
    return frame.select(rule.broken().fill_null(False).alias(rule.name)).to_series()


def _usual_per_row(frame: pl.DataFrame, rule: Determined) -> pl.Series:
    """Per row, the dependent value most rows with its determinant value hold."""
    pairs = pl.DataFrame(
        {"key": column_text(frame, rule.determinant), "value": column_text(frame, rule.dependent)}
    )
    usual = usual_pairs(pairs)
    joined = pairs.join(usual, on="key", how="left", nulls_equal=True, maintain_order="left")
    return joined.get_column("usual")


def usual_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """Per key, the value most rows hold (ties: the smallest, for a stable choice)."""
    counted = (
        pairs.group_by(["key", "value"])
        .len()
        .sort(["key", "len", "value"], descending=[False, True, False], nulls_last=True)
    )
    return (
        counted.group_by("key", maintain_order=True)
        .first()
        .select("key", pl.col("value").alias("usual"))
    )


def column_text(frame: pl.DataFrame, column: str) -> pl.Series:
    """A column's values as the codec writes them: integers without a decimal point."""
    series = frame.get_column(column)
    if series.dtype.is_float():
        whole = series.drop_nulls().drop_nans()
        if whole.len() and (whole == whole.round()).all():
            series = series.round().cast(pl.Int64)
    return series.cast(pl.String)


def describe_rows(frame: pl.DataFrame, rule: Rule, broken: pl.Series) -> pl.Series:
    """Per row, its values of the rule's columns when it breaks the rule; else null.

    ``capital_gain=5000, capital_loss=300``: what a user needs to check the row.
    """
    parts = [
        pl.lit(f"{column}=") + pl.col(column).cast(pl.String).fill_null("null")
        for column in rule.columns
    ]
    text = frame.select(pl.concat_str(parts, separator=", ").alias("text")).to_series()
    if isinstance(rule, Determined):
        usual = _usual_per_row(frame, rule).fill_null("null")
        text = (
            text + f" (most rows with this {rule.determinant} have {rule.dependent}=" + usual + ")"
        )
    return pl.select(pl.when(broken).then(text).otherwise(None)).to_series()


def rule_breaches(frame: pl.DataFrame, rules: Sequence[Rule]) -> dict[str, int]:
    """How many rows of ``frame`` break each rule, by rule name."""
    return {rule.name: int(broken_rows(frame, rule).sum()) for rule in rules}


@dataclass(frozen=True)
class ValueRange:
    """The values a numeric column may take: its bounds, and whole numbers if integer."""

    integer: bool
    lower: float | None = None
    upper: float | None = None

    def admits(self, values: np.ndarray) -> np.ndarray:
        lower = -np.inf if self.lower is None else self.lower
        upper = np.inf if self.upper is None else self.upper
        with np.errstate(invalid="ignore"):
            inside = np.isfinite(values) & (values >= lower) & (values <= upper)
            return inside & (np.rint(values) == values) if self.integer else inside

    def to_dict(self) -> dict[str, Any]:
        return {"integer": self.integer, "lower": self.lower, "upper": self.upper}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ValueRange:
        return cls(bool(state["integer"]), state["lower"], state["upper"])
