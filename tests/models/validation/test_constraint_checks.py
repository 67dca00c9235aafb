"""The GX suite checks the spec's constraints: real Adult rows obey the two rules Adult is
known to obey, and rows that break one are a failure naming the rule, the count and rows."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.constraints import rule_breaches, spec_rules
from fairdistill.models.errors import DataValidationError
from fairdistill.models.spec import DatasetSpec, complete_spec, load_spec
from fairdistill.models.validation import (
    CHECK_SPEC_CONSTRAINT,
    raise_for_failures,
    report_to_markdown,
    validate_frame,
)

ADULT_RULES = ["capital_gain == 0 or capital_loss == 0", "education_num determined by education"]


@pytest.fixture(scope="module")
def spec(adult_spec: DatasetSpec) -> DatasetSpec:
    return DatasetSpec.model_validate({**adult_spec.model_dump(), "constraints": ADULT_RULES})


@pytest.fixture(scope="module")
def sample(adult: pl.DataFrame) -> pl.DataFrame:
    return adult.sample(n=2000, seed=11)


def test_the_whole_adult_table_obeys_both_rules(adult: pl.DataFrame, spec: DatasetSpec) -> None:
    """Checked with polars apart from the suite: the rules the other tests rely on hold."""
    both_nonzero = adult.filter((pl.col("capital_gain") != 0) & (pl.col("capital_loss") != 0))
    assert both_nonzero.height == 0
    per_education = adult.group_by("education").agg(pl.col("education_num").n_unique())
    assert per_education.get_column("education_num").max() == 1
    assert set(rule_breaches(adult, spec_rules(complete_spec(spec, adult))).values()) == {0}


def test_rows_that_obey_pass_and_the_suite_holds_each_rule(
    sample: pl.DataFrame, spec: DatasetSpec
) -> None:
    report = validate_frame(sample, spec, source="adult.parquet")
    assert report.success, report.failures
    checks = [e for e in report.suite["expectations"] if "constraint" in (e.get("meta") or {})]
    assert [e["meta"]["constraint"] for e in checks] == ADULT_RULES
    assert all(e["type"] == "expect_column_values_to_be_null" for e in checks)
    assert all(rule in e["notes"] for e, rule in zip(checks, ADULT_RULES, strict=True))


def test_rows_that_break_a_rule_fail_with_the_rule_count_and_rows(
    sample: pl.DataFrame, spec: DatasetSpec
) -> None:
    first_three = pl.int_range(pl.len()) < 3
    broken = sample.with_columns(
        pl.when(first_three).then(700).otherwise(pl.col("capital_gain")).alias("capital_gain"),
        pl.when(first_three).then(500).otherwise(pl.col("capital_loss")).alias("capital_loss"),
        pl.when(pl.int_range(pl.len()) == 10)
        .then(pl.col("education_num") % 16 + 1)
        .alias("education_num")
        .fill_null(pl.col("education_num")),
    )
    report = validate_frame(broken, spec, source="adult.parquet")
    failures = [f for f in report.failures if f.check == CHECK_SPEC_CONSTRAINT]
    assert not report.success and len(failures) == len(report.failures) == 2
    either, determined = failures
    assert either.unexpected_count == 3 and either.column == "capital_gain, capital_loss"
    assert either.message == "3 rows break the constraint 'capital_gain == 0 or capital_loss == 0'"
    assert either.examples[0] == "row 0 (capital_gain=700, capital_loss=500)"
    assert determined.unexpected_count == 1
    assert determined.examples[0].startswith("row 10 (education_num=")
    assert "most rows with this education have education_num=" in determined.examples[0]
    assert "capital_gain == 0 or capital_loss == 0" in report_to_markdown(report)
    with pytest.raises(DataValidationError) as raised:
        raise_for_failures(report, "adult.parquet")
    assert raised.value.rule == CHECK_SPEC_CONSTRAINT and raised.value.exit_code == 2
    assert "'capital_gain == 0 or capital_loss == 0'" in raised.value.message
    assert "row 0 (capital_gain=700" in raised.value.message


def test_a_rule_real_data_does_not_obey_is_found_in_it(sample: pl.DataFrame) -> None:
    adult_spec = load_spec(bundled_dataset("adult").spec_path)
    spec = DatasetSpec.model_validate(
        {**adult_spec.model_dump(), "constraints": ["hours_per_week >= education_num"]}
    )
    report = validate_frame(sample, spec, source="adult.parquet")
    (failure,) = report.failures
    expected = sample.filter(pl.col("hours_per_week") < pl.col("education_num")).height
    assert expected > 0 and failure.unexpected_count == expected
