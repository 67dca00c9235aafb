"""Drafting a spec for a new table: proposals, TODOs, comments, and a YAML that loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from fairdistill.models.errors import SpecError
from fairdistill.models.inspection import (
    draft_spec,
    draft_spec_yaml,
    format_summary,
    propose_spec,
    summarize_columns,
)
from fairdistill.models.spec import DatasetSpec, complete_spec, load_spec

COMPAS_CSV = (
    Path(__file__).resolve().parents[3] / "shared/datasets/compas/compas-scores-two-years.csv"
)


def applicants(n: int = 400, seed: int = 0) -> pl.DataFrame:
    """Loan applicants: a yes/no label, two sensitive attributes (race mostly 'white'), an id."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "applicant_id": rng.permutation(n) + 1000,
            "race": rng.choice(["white", "black", "asian"], n, p=[0.6, 0.3, 0.1]),
            "age": rng.integers(18, 80, n),
            "gender": rng.choice(["f", "m"], n, p=[0.4, 0.6]),
            "amount": rng.normal(1000.0, 200.0, n),
            "branch": rng.choice(["north", "south"], n),
            "approved": rng.choice(["no", "yes"], n, p=[0.7, 0.3]),
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_proposes_target_positive_and_sensitive_attributes() -> None:
    frame = applicants()
    spec = draft_spec(frame, name="loans")
    assert isinstance(spec, DatasetSpec)
    assert (spec.target.column, spec.target.positive) == ("approved", "yes")
    assert spec.target.classes == ("no", "yes")
    # in frame order, each with its most frequent value as the placeholder privileged group
    assert [(a.column, a.privileged) for a in spec.sensitive] == [
        ("race", ("white",)),
        ("gender", ("m",)),
    ]
    assert spec.columns["applicant_id"].role == "ignore"
    assert spec.columns["applicant_id"].reason is not None
    assert spec.feature_columns == ["age", "amount", "branch"]
    assert spec.columns["age"].type == "integer" and spec.columns["age"].min == 18


def test_the_drafted_yaml_loads_as_the_drafted_spec_and_completes(tmp_path: Path) -> None:
    frame = applicants()
    text = draft_spec_yaml(frame, name="loans", source="loans.csv")
    loaded = load_spec(write(tmp_path, text))
    assert loaded == draft_spec(frame, name="loans")
    completed = complete_spec(loaded, frame)
    assert completed.columns["branch"].categories == ("north", "south")
    assert completed.ignored_columns == ["applicant_id"]


def test_the_yaml_says_what_to_check() -> None:
    text = draft_spec_yaml(applicants(), name="loans", source="loans.csv")
    comments = [line.strip() for line in text.splitlines() if line.strip().startswith("#")]
    assert "loans.csv" in comments[0]
    assert sum("CHECK: privileged is a placeholder" in line for line in comments) == 2
    assert any("favourable outcome" in line for line in comments)
    assert any("white (" in line for line in comments)  # the values and their counts


def test_given_target_positive_and_sensitive_are_kept_and_load_directly(tmp_path: Path) -> None:
    frame = applicants()
    text = draft_spec_yaml(
        frame, name="loans", target="approved", positive="no", sensitive=["branch"]
    )
    spec = load_spec(write(tmp_path, text))
    assert (spec.target.column, spec.target.positive) == ("approved", "no")
    assert spec.sensitive_columns == ["branch"]
    # the sensitive-looking columns not chosen stay features
    assert {"race", "gender"} <= set(complete_spec(spec, frame).feature_columns)
    assert "favourable outcome" not in text  # nothing to check about a given label


def test_a_table_without_recognisable_columns_gets_todos_that_block_loading(
    tmp_path: Path,
) -> None:
    frame = applicants().rename({"approved": "decided_yes", "race": "grp", "gender": "kind"})
    draft = draft_spec(frame, name="loans")
    assert isinstance(draft, dict)
    assert draft["target"] == {"column": "TODO", "positive": "TODO"}
    text = draft_spec_yaml(frame, name="loans")
    assert "TODO: name the label column" in text
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    assert caught.value.rule == "spec-todo"
    filled = (
        text.replace("column: TODO", "column: decided_yes", 1)
        .replace("positive: TODO", "positive: 'yes'", 1)
        .replace("column: TODO", "column: grp", 1)
        .replace("privileged: [TODO]", "privileged: [white]", 1)
    )
    spec = load_spec(write(tmp_path, filled))
    completed = complete_spec(spec, frame)
    assert completed.target.column == "decided_yes"
    assert "decided_yes" not in completed.columns and "grp" not in completed.columns


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 0, 0, 1], "1"),
        (["Bad", "Good", "Good"], "Good"),
        (["N", "Y", "N"], "Y"),
        (["A", "A", "A", "B"], "B"),  # no known word: the rarer label
    ],
)
def test_favourable_label_guess(labels: list, expected: str) -> None:
    frame = pl.DataFrame({"label": labels * 30, "sex": ["f", "m"] * (len(labels) * 15)})
    spec = draft_spec(frame, name="x")
    assert isinstance(spec, DatasetSpec)
    assert spec.target.positive == expected


def test_a_target_with_more_than_two_labels_is_flagged() -> None:
    frame = applicants().with_columns(
        pl.Series("grade", np.random.default_rng(1).choice(["a", "b", "c"], 400))
    )
    draft = propose_spec(frame, name="x", target="grade")
    assert draft.todos == ["target.positive"]
    assert "holds 3 labels" in draft.to_yaml()
    assert "classes" not in draft.raw["target"]


@pytest.mark.parametrize(
    ("arguments", "rule"),
    [
        ({"target": "approval"}, "spec-columns-exist"),
        ({"sensitive": ["ethnicity"]}, "spec-columns-exist"),
        ({"target": "approved", "positive": "maybe"}, "spec-target-positive"),
        ({"target": "race", "sensitive": ["race"]}, "spec-target-not-sensitive"),
    ],
)
def test_given_names_are_checked_against_the_data(arguments: dict, rule: str) -> None:
    with pytest.raises(SpecError) as caught:
        draft_spec(applicants(), name="x", **arguments)
    assert caught.value.rule == rule


def test_empty_and_constant_columns_are_ignored_with_a_reason() -> None:
    frame = applicants().with_columns(
        pl.lit(None, dtype=pl.String).alias("notes"), pl.lit("v2").alias("form")
    )
    spec = draft_spec(frame, name="x")
    assert isinstance(spec, DatasetSpec)
    assert spec.columns["notes"].reason == "empty: all 400 values are missing"
    assert spec.columns["form"].reason == "constant: the same value in all 400 rows"
    assert set(spec.ignored_columns) == {"applicant_id", "notes", "form"}


def test_summary_lists_every_column_with_role_and_reason() -> None:
    frame = applicants().with_columns(pl.lit(None, dtype=pl.Int64).alias("empty"))
    draft = propose_spec(frame, name="loans", source="loans.csv")
    by_name = {row.name: row for row in summarize_columns(frame, draft)}
    assert list(by_name) == frame.columns
    assert by_name["approved"].role == "target"
    assert by_name["race"].role == "sensitive" and by_name["race"].distinct == 3
    assert by_name["empty"].nulls == 400 and by_name["empty"].role == "ignore"
    text = format_summary(frame, draft)
    assert text.startswith("loans.csv: 400 rows, 8 columns")
    assert "identifier: 400 distinct values in 400 rows" in text


def test_adult_draft_finds_income_race_and_sex(adult_sample: pl.DataFrame, tmp_path: Path):
    text = draft_spec_yaml(adult_sample, name="adult")
    spec = load_spec(write(tmp_path, text))
    assert (spec.target.column, spec.target.positive) == ("income", ">50K")
    assert spec.sensitive_columns == ["race", "sex"]
    assert complete_spec(spec, adult_sample).ignored_columns == []


@pytest.mark.skipif(not COMPAS_CSV.is_file(), reason=f"{COMPAS_CSV} is not present")
def test_compas_draft_drops_the_id_the_empty_and_the_constant_columns() -> None:
    from fairdistill.models.tables import read_table

    frame = read_table(COMPAS_CSV)
    draft = propose_spec(frame, name="compas")
    assert draft.raw["target"]["column"] == "two_year_recid"
    assert "race" in draft.sensitive_columns and "sex" in draft.sensitive_columns
    reasons = {name: column.reason or "" for name, column in draft.columns.items()}
    assert reasons["id"].startswith("identifier")
    assert reasons["violent_recid"].startswith("empty")
    assert reasons["type_of_assessment"].startswith("constant")
    assert reasons["c_charge_desc"].startswith("too many categories")
    assert yaml.safe_load(draft.to_yaml()) == draft.raw
