"""The dataset spec: loading, its errors, completion from data, and identifier detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from fairdistill.models.errors import SpecError
from fairdistill.models.spec import (
    ColumnSpec,
    DatasetSpec,
    complete_spec,
    ignore_reason,
    load_spec,
    looks_like_identifier_name,
    parse_spec,
    spec_to_yaml,
)

MINIMAL = {
    "name": "loans",
    "target": {"column": "approved", "positive": "yes"},
    "sensitive": [{"column": "sex", "privileged": ["male"]}],
}


def minimal_spec(**changes: object) -> DatasetSpec:
    return DatasetSpec.model_validate({**MINIMAL, **changes})


def loans(n: int, seed: int = 0) -> pl.DataFrame:
    """A small table with a label, a sensitive attribute and ordinary features."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "approved": rng.choice(["no", "yes"], n),
            "sex": rng.choice(["female", "male"], n),
            "age": rng.integers(18, 80, n),
            "amount": rng.normal(1000.0, 200.0, n),
            "purpose": rng.choice(["car", "house", "study"], n),
        }
    )


# ---------------------------------------------------------------- loading


def test_load_spec_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    spec = load_spec(path)
    assert spec.target.positive == "yes"
    assert spec.sensitive_columns == ["sex"]
    assert spec.columns == {}


def test_load_spec_of_a_missing_file_names_the_rule(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "absent.yaml")
    assert caught.value.rule == "spec-exists"
    assert "inspect" in (caught.value.hint or "")


def test_load_spec_reports_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.rule == "spec-yaml"


@pytest.mark.parametrize(
    ("raw", "rule", "words"),
    [
        (["a", "list"], "spec-shape", "mapping"),
        ({"name": "x", "sensitive": MINIMAL["sensitive"]}, "spec-schema", "'target'"),
        (
            {**MINIMAL, "sensitive": [MINIMAL["sensitive"][0], MINIMAL["sensitive"][0]]},
            "spec-schema",
            "repeat",
        ),
        ({**MINIMAL, "sensitive": [{"column": "sex", "privileged": []}]}, "spec-schema", "sens"),
        ({**MINIMAL, "extra_field": 1}, "spec-unknown-key", "extra_field"),
    ],
)
def test_parse_spec_turns_schema_problems_into_one_error(raw: object, rule: str, words: str):
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, source="s.yaml")
    assert caught.value.rule == rule
    assert caught.value.file == "s.yaml"
    assert words in caught.value.message


def test_parse_spec_refuses_todo_placeholders_and_names_where_they_are() -> None:
    raw = {
        "name": "x",
        "target": {"column": "TODO", "positive": "TODO"},
        "sensitive": [{"column": "sex", "privileged": ["TODO"]}],
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert caught.value.rule == "spec-todo"
    for where in ("target.column", "target.positive", "sensitive.0.privileged.0"):
        assert where in caught.value.message


# ---------------------------------------------------------------- completion


def test_complete_spec_infers_types_bounds_nullability_and_categories() -> None:
    frame = loans(200).with_columns(
        pl.when(pl.col("age") > 70).then(None).otherwise(pl.col("age")).alias("age")
    )
    completed = complete_spec(minimal_spec(), frame)
    assert list(completed.columns) == ["age", "amount", "purpose"]
    age, amount, purpose = (completed.columns[name] for name in ("age", "amount", "purpose"))
    assert (age.type, age.nullable, age.min) == ("integer", True, 18.0)
    assert age.max is not None and age.max <= 70
    assert amount.type == "continuous" and amount.nullable is False
    assert amount.min == pytest.approx(frame["amount"].min())
    assert purpose.type == "categorical"
    assert purpose.categories == ("car", "house", "study")
    assert all(column.reason is None for column in completed.columns.values())


def test_complete_spec_keeps_what_the_spec_gives() -> None:
    given = {"age": ColumnSpec(min=0, max=120), "purpose": ColumnSpec(role="ignore")}
    completed = complete_spec(minimal_spec(columns=given), loans(200))
    assert (completed.columns["age"].min, completed.columns["age"].max) == (0, 120)
    assert completed.ignored_columns == ["purpose"]
    assert completed.columns["purpose"].categories is None


def test_complete_spec_refuses_a_column_the_data_lacks() -> None:
    spec = minimal_spec(target={"column": "approval", "positive": "yes"})
    with pytest.raises(SpecError) as caught:
        complete_spec(spec, loans(50), source="loans.csv")
    assert caught.value.column == "approval"
    assert caught.value.rule == "spec-columns-exist"
    assert caught.value.file == "loans.csv"


# ---------------------------------------------------------------- identifiers


def test_unique_id_columns_of_30000_rows_are_ignored_with_a_reason() -> None:
    n = 30_000
    rng = np.random.default_rng(3)
    frame = loans(n).with_columns(
        pl.Series("customer_id", rng.permutation(n) + 10_000),
        pl.Series("uuid", [f"c-{value:08x}" for value in rng.permutation(n)]),
    )
    completed = complete_spec(minimal_spec(), frame)
    for name in ("customer_id", "uuid"):
        column = completed.columns[name]
        assert column.role == "ignore"
        assert column.categories is None  # never one-hot encoded
        assert (
            column.reason == "identifier: 30,000 distinct values in 30,000 rows, named like an id"
        )
    assert completed.feature_columns == ["age", "amount", "purpose"]


def test_a_sorted_run_of_distinct_integers_is_an_identifier_whatever_its_name() -> None:
    frame = loans(500).with_columns(pl.Series("row", np.arange(500, 0, -1)))
    column = complete_spec(minimal_spec(), frame).columns["row"]
    assert column.role == "ignore"
    assert column.reason is not None and "decreasing" in column.reason


@pytest.mark.parametrize(
    ("name", "values", "ignored"),
    [
        # distinct but unsorted, not named like an id: a genuine feature
        ("balance", np.random.default_rng(1).permutation(2000), False),
        # sorted and distinct but too few rows to tell from a feature
        ("year", np.arange(1950, 2000), False),
        # named like an id, 97 % distinct on 2,000 rows: a key with a few repeats
        ("case_number", np.r_[np.arange(1940), np.arange(60)], True),
        # named like an id but 75 % distinct: a grouping code, not a key
        ("branch_id", np.r_[np.arange(1500), np.arange(500)], False),
        # named like an id, one repeat, too few rows for "nearly distinct"
        ("account_no", np.r_[np.arange(499), [0]], False),
    ],
)
def test_identifier_rules(name: str, values: np.ndarray, ignored: bool) -> None:
    series = pl.Series(name, values)
    reason = ignore_reason(series)
    assert (reason is not None) == ignored, reason


def test_high_cardinality_text_is_ignored_as_free_text_and_floats_never_are() -> None:
    rng = np.random.default_rng(5)
    words = [f"note {i}" for i in range(300)]
    frame = loans(600).with_columns(
        pl.Series("comment", rng.choice(words, 600)), pl.Series("score", rng.random(600))
    )
    completed = complete_spec(minimal_spec(), frame)
    comment = completed.columns["comment"]
    assert comment.role == "ignore"
    assert comment.reason is not None and "too many categories" in comment.reason
    assert completed.columns["score"].role == "feature"


def test_a_listed_identifier_is_never_overridden() -> None:
    frame = loans(300).with_columns(pl.Series("id", np.arange(300)))
    listed_with_type = minimal_spec(columns={"id": {"type": "integer"}})
    listed_without_type = minimal_spec(columns={"id": {"nullable": False}})
    for spec in (listed_with_type, listed_without_type):
        column = complete_spec(spec, frame).columns["id"]
        assert column.role == "feature" and column.reason is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("id", True),
        ("ID", True),
        ("customer_id", True),
        ("CustomerID", True),
        ("caseNumber", True),
        ("uuid", True),
        ("Unnamed: 0", True),
        ("", True),
        ("id_customer", True),
        ("age", False),
        ("education_num", False),
        ("identity", False),
        ("paid", False),
        ("idle_time", False),
    ],
)
def test_identifier_names(name: str, expected: bool) -> None:
    assert looks_like_identifier_name(name) is expected


# ---------------------------------------------------------------- YAML


def test_completed_spec_round_trips_through_yaml_with_reasons() -> None:
    frame = loans(300).with_columns(pl.Series("id", np.random.default_rng(2).permutation(300)))
    completed = complete_spec(minimal_spec(), frame)
    text = spec_to_yaml(completed)
    assert parse_spec(yaml.safe_load(text)) == completed
    raw_columns = yaml.safe_load(text)["columns"]
    assert "reason" in raw_columns["id"]
    assert "reason" not in raw_columns["age"]  # None is left out


# ---------------------------------------------------------------- labels as YAML writes them


def test_yaml_numbers_and_booleans_are_labels_as_text() -> None:
    """``positive: 1`` and ``privileged: [1]`` are not refused."""
    spec = parse_spec(
        yaml.safe_load(
            "name: bar\ntarget: {column: passed, positive: 1, classes: [0, 1]}\n"
            "sensitive:\n  - {column: group, privileged: [1, true]}\n"
        )
    )
    assert spec.target.positive == "1" and spec.target.classes == ("0", "1")
    assert spec.sensitive[0].privileged == ("1", "true")


@pytest.mark.parametrize(
    ("values", "written", "matched"),
    [
        (pl.Series([0, 1, 1]), 1, "1"),
        (pl.Series([0.0, 1.0, 1.0]), 1, "1.0"),
        (pl.Series([False, True, True]), True, "true"),
        (pl.Series(["no", "yes", "yes"]), True, "yes"),  # `positive: yes`, unquoted
        (pl.Series(["N", "Y", "Y"]), False, "N"),
        (pl.Series(["0", "1", "1"]), 1, "1"),
        (pl.Series(["no", "yes"]), "Yes", "Yes"),  # quoted text is matched as written
        (pl.Series([0, 2, 2]), 1, "1"),  # absent: left for validation to report
    ],
)
def test_labels_are_matched_against_the_columns_values(
    values: pl.Series, written: object, matched: str
) -> None:
    raw = {
        "name": "t",
        "target": {"column": "y", "positive": written},
        "sensitive": [{"column": "s", "privileged": [written]}],
    }
    frame = pl.DataFrame({"y": values, "s": values, "x": [1.5] * values.len()})
    completed = complete_spec(parse_spec(raw), frame)
    assert completed.target.positive == matched
    assert completed.sensitive[0].privileged == (matched,)


# ---------------------------------------------------------------- misspelt keys


@pytest.mark.parametrize(
    ("changes", "key", "suggestion"),
    [
        ({"colums": {}}, "colums", "columns"),
        ({"target": {"column": "approved", "postive": "yes"}}, "target.postive", "positive"),
        (
            {"sensitive": [{"column": "sex", "privilegd": ["m"]}]},
            "sensitive.0.privilegd",
            "privileged",
        ),
        ({"columns": {"age": {"tpye": "integer"}}}, "columns.age.tpye", "type"),
        ({"min_row": 5}, "min_row", "min_rows"),
    ],
)
def test_an_unknown_key_is_named_with_the_closest_valid_one(
    changes: dict, key: str, suggestion: str | None
) -> None:
    """``colums:`` is named, and ``columns`` suggested."""
    raw = {**MINIMAL, **changes}
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, source="s.yaml")
    error = caught.value
    assert error.rule == "spec-unknown-key" and f"unknown key '{key}'" in error.message
    if suggestion:
        assert f"did you mean '{suggestion}'?" in error.message
        assert f"to '{suggestion}'" in str(error.hint)
    assert "target (column, positive)" not in str(error.hint)


def test_an_unknown_key_far_from_any_lists_the_valid_ones() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({**MINIMAL, "zzz": 1})
    assert "did you mean" not in caught.value.message
    assert "name, description, modality" in str(caught.value.hint)
