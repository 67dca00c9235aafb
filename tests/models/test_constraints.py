"""Cross-column constraints: the rule parser, the spec's checks of a rule's columns, and the
repairs that make every generated row obey every rule without dropping one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairdistill.models.codec import TabularCodec
from fairdistill.models.constraints import (
    Comparison,
    Determined,
    EitherEquals,
    FittedConstraints,
    RuleSyntaxError,
    enforce,
    parse_rule,
    rule_breaches,
    spec_rules,
)
from fairdistill.models.errors import ConstraintError, SpecError
from fairdistill.models.spec import DatasetSpec, complete_spec, parse_spec, spec_to_yaml

RULES = ["end >= start", "gain == 0 or loss == 0", "level_num determined by level"]
LEVELS = {"low": 1, "mid": 5, "high": 9}


def spec_with(rules: list[object], **columns: dict) -> DatasetSpec:
    return parse_spec(
        {
            "name": "tickets",
            "target": {"column": "y", "positive": "yes"},
            "sensitive": [{"column": "s", "privileged": ["m"]}],
            "columns": columns,
            "constraints": rules,
        }
    )


def tickets(rows: int = 1500, seed: int = 3) -> pl.DataFrame:
    """Rows that obey every rule of RULES, as a real table would."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 60, rows)
    gain = np.where(rng.random(rows) < 0.7, 0, rng.integers(100, 20_000, rows))
    loss = np.where(gain > 0, 0, np.where(rng.random(rows) < 0.5, 0, rng.integers(1, 2_000, rows)))
    level = rng.choice(list(LEVELS), rows)
    return pl.DataFrame(
        {
            "y": rng.choice(["yes", "no"], rows),
            "s": rng.choice(["m", "f"], rows),
            "start": start,
            "end": start + rng.integers(0, 40, rows),
            "gain": gain,
            "loss": loss,
            "level": level,
            "level_num": [LEVELS[value] for value in level],
            "ratio": rng.random(rows),
        }
    )


def drawn_badly(frame: pl.DataFrame, seed: int = 9) -> pl.DataFrame:
    """What a generator that learnt each column but no rule would draw: shuffled columns."""
    return frame.with_columns(
        pl.col(name).shuffle(seed + index)
        for index, name in enumerate(["start", "end", "loss", "level_num"])
    )


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    return tickets()


@pytest.fixture(scope="module")
def spec(train: pl.DataFrame) -> DatasetSpec:
    return complete_spec(spec_with(RULES), train)


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("end >= start", Comparison("end >= start", "end_ge_start", "end", "start", False)),
        ("end > start", Comparison("end > start", "end_gt_start", "end", "start", True)),
        ("start <= end", Comparison("start <= end", "start_le_end", "end", "start", False)),
        ("start<end", Comparison("start<end", "start_lt_end", "end", "start", True)),
        (
            "capital_loss == 0 or capital_gain == 0",
            EitherEquals(
                "capital_loss == 0 or capital_gain == 0",
                "capital_loss_eq_0_or_capital_gain_eq_0",
                "capital_loss",
                0.0,
                "capital_gain",
                0.0,
            ),
        ),
        (
            "a == -1.5 OR b == 2e3",
            EitherEquals("a == -1.5 OR b == 2e3", "a_eq_1_5_or_b_eq_2e3", "a", -1.5, "b", 2000.0),
        ),
        (
            "education_num determined by education",
            Determined(
                "education_num determined by education",
                "education_num_determined_by_education",
                "education_num",
                "education",
            ),
        ),
        (
            "`end day` >= `start day`",
            Comparison(
                "`end day` >= `start day`", "end_day_ge_start_day", "end day", "start day", False
            ),
        ),
    ],
)
def test_each_supported_form_parses(text: str, expected: object) -> None:
    assert parse_rule(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "age >= 18",
        "a == b",
        "a + b >= c",
        "a >= b and b >= c",
        "a == 0 or b == 0 or c == 0",
        "a == 0 or b >= 1",
        "__import__('os').system('x')",
        "b determined a",
        "",
    ],
)
def test_other_forms_are_refused(text: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse_rule(text)


def test_a_bad_form_is_one_spec_error_listing_the_supported_forms() -> None:
    with pytest.raises(SpecError) as raised:
        spec_with(["age >= 18"])
    error = raised.value
    assert error.rule == "spec-constraint"
    assert "constraints.0" in error.message and "'age >= 18'" in error.message
    assert "min or max" in error.message  # a bound belongs under columns:
    assert "determined by" in (error.hint or "") and ">=" in (error.hint or "")


def test_rules_are_strings_or_mappings_and_round_trip_through_yaml(train: pl.DataFrame) -> None:
    given = spec_with(["end >= start", {"rule": "gain == 0 or loss == 0", "name": "one_side"}])
    assert [rule.name for rule in spec_rules(given)] == ["end_ge_start", "one_side"]
    text = spec_to_yaml(given)
    assert "- end >= start\n" in text and "name: one_side" in text
    import yaml

    assert parse_spec(yaml.safe_load(text)) == given
    assert "constraints" not in spec_to_yaml(spec_with([]))


@pytest.mark.parametrize(
    ("rule", "column", "words"),
    [
        ("end >= strat", "strat", "did you mean 'start'"),
        ("level_num determined by levle", "levle", "did you mean 'level'"),
        ("end >= y", "y", "the target"),
        ("gain == 0 or s == 0", "s", "a sensitive attribute"),
        ("s determined by level", "s", "would set 's'"),
        ("level >= start", "level", "categorical"),
        ("level_num determined by ratio", "ratio", "continuous"),
        ("gain == 0 or loss == -5", "loss", "outside its bounds"),
        ("gain == 0.5 or loss == 0", "gain", "outside its bounds or rounding"),
        ("end >= end", "end", "same column twice"),
    ],
)
def test_a_rule_the_columns_cannot_take_names_the_rule_and_the_column(
    train: pl.DataFrame, rule: str, column: str, words: str
) -> None:
    with pytest.raises(SpecError) as raised:
        complete_spec(spec_with([rule]), train, source="tickets.parquet")
    error = raised.value
    assert error.rule == "spec-constraint" and error.column == column
    assert f"'{rule}'" in error.message and words in error.message
    assert error.file == "tickets.parquet"


def test_a_rule_on_an_ignored_column_is_refused(train: pl.DataFrame) -> None:
    spec = spec_with(["end >= start"], start={"role": "ignore"})
    with pytest.raises(SpecError, match="not modelled"):
        complete_spec(spec, train)


def test_a_determinant_may_be_a_sensitive_attribute(train: pl.DataFrame) -> None:
    completed = complete_spec(spec_with(["level determined by s"]), train)
    assert [rule.name for rule in spec_rules(completed)] == ["level_determined_by_s"]


def test_two_rules_of_one_name_are_refused(train: pl.DataFrame) -> None:
    rules = [{"rule": "end >= start", "name": "r"}, {"rule": "gain == 0 or loss == 0", "name": "r"}]
    with pytest.raises(SpecError, match="shares its name"):
        complete_spec(spec_with(rules), train)


# ------------------------------------------------------------------------------ repairs


def test_real_rows_obey_and_are_left_alone(train: pl.DataFrame, spec: DatasetSpec) -> None:
    assert rule_breaches(train, spec_rules(spec)) == dict.fromkeys(
        ["end_ge_start", "gain_eq_0_or_loss_eq_0", "level_num_determined_by_level"], 0
    )
    repaired, counts = enforce(train, FittedConstraints.fit(train, spec))
    assert repaired.equals(train)
    assert set(counts.values()) == {0}


def test_every_repaired_row_obeys_every_rule_and_none_is_dropped(
    train: pl.DataFrame, spec: DatasetSpec
) -> None:
    synthetic = drawn_badly(train)
    before = rule_breaches(synthetic, spec_rules(spec))
    assert all(count > 100 for count in before.values()), before
    repaired, counts = enforce(synthetic, FittedConstraints.fit(train, spec))
    assert repaired.height == synthetic.height
    assert repaired.schema == synthetic.schema
    assert set(rule_breaches(repaired, spec_rules(spec)).values()) == {0}
    # Each rule counts the rows it changed: the rows that broke it (one rule per column here).
    assert counts["end_ge_start"] == before["end_ge_start"]
    assert counts["gain_eq_0_or_loss_eq_0"] == before["gain_eq_0_or_loss_eq_0"]
    moved = repaired.get_column("level_num") != synthetic.get_column("level_num")
    assert counts["level_num_determined_by_level"] == int(moved.sum())
    # Columns no rule names are untouched.
    for name in ("y", "s", "level", "ratio"):
        assert repaired.get_column(name).equals(synthetic.get_column(name))


def test_repairs_keep_bounds_and_rounding(train: pl.DataFrame, spec: DatasetSpec) -> None:
    repaired, _ = enforce(drawn_badly(train), FittedConstraints.fit(train, spec))
    for name in ("start", "end", "gain", "loss", "level_num"):
        column = spec.columns[name]
        values = repaired.get_column(name)
        assert values.dtype == pl.Int64
        assert column.min <= values.min() and values.max() <= column.max, name


def test_a_comparison_swaps_the_pair_so_every_value_drawn_stays(
    train: pl.DataFrame, spec: DatasetSpec
) -> None:
    synthetic = drawn_badly(train)
    repaired, _ = enforce(synthetic, FittedConstraints.fit(train, spec))
    pairs = lambda frame: sorted(  # noqa: E731
        zip(frame.get_column("start").to_list(), frame.get_column("end").to_list(), strict=True)
    )
    assert sorted(map(sorted, pairs(repaired))) == sorted(map(sorted, pairs(synthetic)))


@pytest.mark.parametrize(
    ("high_bounds", "low_bounds", "expected_high", "expected_low"),
    [
        # 5 is below low's min: no swap; high rises to the least whole number above 40.
        ({"min": 0, "max": 100}, {"min": 10, "max": 100}, 41, 40),
        # 40 is above high's max as well: low comes down below 5 instead.
        ({"min": 0, "max": 30}, {"min": 0, "max": 100}, 5, 4),
    ],
)
def test_a_comparison_moves_one_side_where_bounds_refuse_a_swap(
    high_bounds: dict, low_bounds: dict, expected_high: int, expected_low: int
) -> None:
    frame = pl.DataFrame({"y": ["yes", "no"], "s": ["m", "f"], "high": [25, 5], "low": [10, 40]})
    spec = complete_spec(
        spec_with(
            ["high > low"],
            high={"type": "integer", **high_bounds},
            low={"type": "integer", **low_bounds},
        ),
        frame,
    )
    repaired, counts = enforce(frame, FittedConstraints.fit(frame, spec))
    assert repaired.get_column("high").to_list() == [25, expected_high]
    assert repaired.get_column("low").to_list() == [10, expected_low]
    assert counts == {"high_gt_low": 1}


def test_an_or_rule_keeps_the_value_large_for_its_column() -> None:
    train = pl.DataFrame(
        {
            "y": ["yes", "no"] * 3,
            "s": ["m", "f"] * 3,
            "gain": [0, 0, 0, 10_000, 20_000, 0],
            "loss": [0, 100, 200, 0, 0, 0],
        }
    )
    spec = complete_spec(spec_with(["gain == 0 or loss == 0"]), train)
    drawn = pl.DataFrame(
        {"y": ["yes", "no"], "s": ["m", "f"], "gain": [14_000, 1_500], "loss": [50, 190]}
    )
    repaired, counts = enforce(drawn, FittedConstraints.fit(train, spec))
    # 14,000 is a typical gain and 50 a small loss: the loss goes; 1,500 is a small gain.
    assert repaired.get_column("gain").to_list() == [14_000, 0]
    assert repaired.get_column("loss").to_list() == [0, 190]
    assert counts == {"gain_eq_0_or_loss_eq_0": 2}


def test_nulls_neither_break_a_comparison_nor_are_filled() -> None:
    frame = pl.DataFrame(
        {
            "y": ["yes", "no", "no"],
            "s": ["m", "f", "m"],
            "end": [None, 3.0, 1.0],
            "start": [5.0, None, 2.0],
        }
    )
    bounds = {"type": "continuous", "min": 0.0, "max": 10.0}
    spec = complete_spec(spec_with(["end >= start"], end=bounds, start=bounds), frame)
    repaired, counts = enforce(frame, FittedConstraints.fit(frame, spec))
    assert repaired.get_column("end").to_list() == [None, 3.0, 2.0]
    assert repaired.get_column("start").to_list() == [5.0, None, 1.0]
    assert counts == {"end_ge_start": 1}


def test_an_unseen_integer_determinant_takes_the_nearest_seen_ones_value() -> None:
    train = pl.DataFrame(
        {
            "y": ["yes", "no", "no"],
            "s": ["m", "f", "m"],
            "grade": [1, 5, 9],
            "band": ["a", "b", "c"],
        }
    )
    spec = complete_spec(spec_with(["band determined by grade"]), train)
    drawn = train.with_columns(pl.Series("grade", [2, 4, 8]), pl.Series("band", ["c", "a", "a"]))
    repaired, _ = enforce(drawn, FittedConstraints.fit(train, spec))
    assert repaired.get_column("band").to_list() == ["a", "b", "c"]
    assert repaired.get_column("grade").to_list() == [2, 4, 8]


def test_rules_that_cannot_hold_together_are_an_error_not_a_drop() -> None:
    frame = pl.DataFrame({"y": ["yes", "no"], "s": ["m", "f"], "a": [1, 5], "b": [3, 2]})
    spec = complete_spec(spec_with(["a > b", "b > a"]), frame)
    with pytest.raises(ConstraintError, match="still break"):
        enforce(frame, FittedConstraints.fit(frame, spec))


def test_the_codec_stores_the_rules_and_every_decode_obeys_them(
    train: pl.DataFrame, spec: DatasetSpec
) -> None:
    codec = TabularCodec.fit(train, spec)
    restored = TabularCodec.from_dict(codec.to_dict())
    assert restored.constraints == codec.constraints
    encoded = codec.encode(drawn_badly(train))
    frame, counts = restored.decode_with_repairs(encoded.features, encoded.sensitive, encoded.label)
    assert frame.height == train.height and sum(counts.values()) > 0
    assert set(rule_breaches(frame, spec_rules(spec)).values()) == {0}
    assert restored.decode(encoded.features, encoded.sensitive, encoded.label).equals(frame)


def test_a_codec_without_rules_is_stored_as_before(train: pl.DataFrame) -> None:
    codec = TabularCodec.fit(train, complete_spec(spec_with([]), train))
    assert "constraints" not in codec.to_dict()
