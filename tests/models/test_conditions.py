"""Conditions as users write them: parsed without eval, typed by the codec, refused clearly."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.codec import TabularCodec
from fairdistill.models.conditions import (
    ConditionError,
    bind_conditions,
    parse_condition,
    read_condition_file,
)
from fairdistill.models.spec import complete_spec, load_spec


@pytest.fixture(scope="module")
def codec(adult_sample: pl.DataFrame) -> TabularCodec:
    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), adult_sample)
    return TabularCodec.fit(adult_sample, spec)


@pytest.mark.parametrize(
    ("text", "column", "op", "values"),
    [
        ("age >= 60", "age", ">=", ("60",)),
        ("age<30", "age", "<", ("30",)),
        ("income == >50K", "income", "==", (">50K",)),
        ("workclass in [Private, Self-emp-inc]", "workclass", "in", ("Private", "Self-emp-inc")),
        ("workclass NOT IN ['a, b', \"c\"]", "workclass", "not in", ("a, b", "c")),
        ("age between 30 and 50", "age", "between", ("30", "50")),
        ("`hours_per_week` != 40", "hours_per_week", "!=", ("40",)),
    ],
)
def test_conditions_parse_into_column_operator_and_values(
    text: str, column: str, op: str, values: tuple[str, ...]
) -> None:
    parsed = parse_condition(text)
    assert (parsed.column, parsed.op, parsed.values) == (column, op, values)


@pytest.mark.parametrize(
    "text", ["age", "age >=", "age => 3", "workclass in Private", "age between 3", "in [a]", ""]
)
def test_unreadable_conditions_are_refused_with_the_syntax(text: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    assert caught.value.rule == "condition-syntax"


def test_values_are_typed_by_the_column(codec: TabularCodec) -> None:
    conditions = bind_conditions(["age >= 60", "sex == Female", "income == >50K"], codec)
    kinds = {c.column: (c.kind, c.values) for c in conditions.conditions}
    assert kinds == {
        "age": ("number", (60.0,)),
        "sex": ("category", ("Female",)),
        "income": ("category", (">50K",)),
    }


@pytest.mark.parametrize(
    ("conditions", "rule", "words"),
    [
        (["agee >= 60"], "condition-column", "did you mean 'age'"),
        (["workclass == Privat"], "condition-category", "did you mean 'Private'"),
        (["age >= 120"], "condition-support", "[17, 90]"),
        (["age between 91 and 99"], "condition-support", "outside"),
        (["age >= 60", "age < 40"], "condition-contradiction", "contradict"),
        (["sex == Male", "sex != Male"], "condition-contradiction", "'sex == Male'"),
        (["workclass > Private"], "condition-operator", "no order"),
        (["age >= old"], "condition-value", "not a number"),
        (["age >= 89.5", "age < 90"], "condition-contradiction", "contradict"),
    ],
)
def test_conditions_nothing_can_meet_are_refused_naming_them(
    codec: TabularCodec, conditions: list[str], rule: str, words: str
) -> None:
    with pytest.raises(ConditionError) as caught:
        bind_conditions(conditions, codec)
    assert caught.value.rule == rule
    assert words in str(caught.value)
    assert conditions[0] in caught.value.message


def test_a_condition_on_an_ignored_column_says_it_is_ignored(codec: TabularCodec) -> None:
    with pytest.raises(ConditionError, match="the spec ignores"):
        bind_conditions(["person_id == 7"], codec, ignored_columns=["person_id"])


def test_masks_follow_sql_a_null_meets_no_condition(codec: TabularCodec) -> None:
    frame = pl.DataFrame(
        {"workclass": ["Private", None, "State-gov"], "age": [61, 30, None]},
        schema={"workclass": pl.String, "age": pl.Int64},
    )
    assert bind_conditions(["workclass != Private"], codec).mask(frame).tolist() == [
        False,
        False,
        True,
    ]
    assert bind_conditions(["age between 30 and 61"], codec).mask(frame).tolist() == [
        True,
        True,
        False,
    ]


def test_the_yaml_form_is_a_list_of_condition_strings() -> None:
    text = "- age >= 60\n- 'workclass in [Private, Self-emp-inc]'\n"
    assert read_condition_file(text, "c.yaml") == [
        "age >= 60",
        "workclass in [Private, Self-emp-inc]",
    ]
    with pytest.raises(ConditionError, match="list of condition strings"):
        read_condition_file("age: 60\n", "c.yaml")


def test_a_numeric_spike_counts_as_part_of_the_support(codec: TabularCodec) -> None:
    # capital_loss is zero for most rows: the zeros are its spike, outside its quantiles.
    conditions = bind_conditions(["capital_loss == 0"], codec)
    assert [c.values for c in conditions.conditions] == [(0.0,)]
