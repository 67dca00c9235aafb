"""Conditional draws from a small trained generator: every condition met, exact counts and
group mix, repeatable, rare conditions filled through the reweighted mixture, impossible
ones refused."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.codec import TabularCodec
from fairdistill.models.conditional import (
    ConditionalGenerator,
    ConditionalSettings,
    sample_conditional,
)
from fairdistill.models.conditions import ConditionError, bind_conditions
from fairdistill.models.config import GenerateConfig
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.stages import fit_latent_prior, fit_teacher
from fairdistill.models.teacher import TeacherConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def generator(adult_sample: pl.DataFrame, one_torch_thread: None) -> ConditionalGenerator:
    """A teacher trained for a few hundred steps (seconds) and its prior on its own codes."""
    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), adult_sample)
    codec = TabularCodec.fit(adult_sample, spec)
    table = codec.encode(adult_sample)
    settings = TeacherConfig(hidden=(32,), latent_dim=4, steps=400)
    teacher = fit_teacher(codec, table, settings, seed=0).model
    prior = fit_latent_prior(teacher.encoder, table, codec, GenerateConfig(), seed=0).prior
    return ConditionalGenerator(teacher, prior, codec, table.sensitive)


def _draw(generator: ConditionalGenerator, where: list[str], rows: int = 300, **options):
    conditions = bind_conditions(where, generator.codec)
    return conditions, sample_conditional(generator, conditions, rows, seed=3, **options)


@pytest.mark.parametrize(
    "where",
    [
        ["age >= 60", "workclass in [Private, Self-emp-inc]"],
        ["education == Bachelors", "hours_per_week between 30 and 50"],
        ["sex == Female", "income == >50K"],
        ["occupation not in [Craft-repair, Sales]", "age < 30", "income != >50K"],
    ],
)
def test_every_row_meets_every_condition_and_the_count_is_exact(
    generator: ConditionalGenerator, where: list[str]
) -> None:
    conditions, sample = _draw(generator, where, rows=257)
    assert sample.frame.height == 257
    assert conditions.mask(sample.frame).all()
    assert sample.frame.columns == generator.codec.columns_out


def test_the_group_mix_is_the_training_mix_exactly_or_balanced(
    generator: ConditionalGenerator,
) -> None:
    real = generator.real_sensitive[:, 0]
    share_male = (real == generator.codec.sensitive_levels[0].index("Male")).mean()
    _, sample = _draw(generator, ["age >= 50"], rows=401)
    males = int((sample.frame["sex"] == "Male").sum())
    # Largest remainder: the exact count nearest the training share.
    assert abs(males - 401 * share_male) < 1
    _, balanced = _draw(generator, ["age >= 50"], rows=401, mix="balanced")
    assert sorted(balanced.frame["sex"].value_counts()["count"].to_list()) == [200, 201]


def test_a_condition_on_the_sensitive_attribute_chooses_the_group(
    generator: ConditionalGenerator,
) -> None:
    _, sample = _draw(generator, ["sex == Female"], rows=120)
    assert sample.frame["sex"].unique().to_list() == ["Female"]
    # No row was drawn only to be rejected for its group.
    assert [(g.group, g.pilot_draws, g.draws) for g in sample.groups] == [
        ({"sex": "Female"}, 0, 120)
    ]


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(
    generator: ConditionalGenerator,
) -> None:
    conditions = bind_conditions(["age >= 45", "relationship == Husband"], generator.codec)
    first = sample_conditional(generator, conditions, 200, seed=11)
    again = sample_conditional(generator, conditions, 200, seed=11)
    other = sample_conditional(generator, conditions, 200, seed=12)
    assert first.frame.equals(again.frame)
    assert not first.frame.equals(other.frame)


def test_a_rare_condition_fills_its_count_through_the_reweighted_components(
    generator: ConditionalGenerator,
) -> None:
    conditions, sample = _draw(generator, ["age >= 75", "hours_per_week >= 50"], rows=200)
    summary = sample.summary()
    assert summary["estimated_rate"] < 0.01
    assert sample.frame.height == 200 and conditions.mask(sample.frame).all()
    for group in sample.groups:
        # Plain rejection would need rows / rate draws; the reweighted mixture far fewer.
        assert group.draws < 0.5 * group.rows / group.estimated_rate
        assert group.kept_components < group.components


def test_a_condition_no_draw_meets_fails_naming_it(generator: ConditionalGenerator) -> None:
    # Inside the training range, but the generator never produces it: the pilot finds no
    # component that accepts, and says so instead of drawing forever.
    settings = ConditionalSettings(pilot_rows=256, second_pilot_factor=2)
    conditions = bind_conditions(
        ["age == 90", "education == Preschool", "capital_gain >= 90000"], generator.codec
    )
    with pytest.raises(ConditionError) as caught:
        sample_conditional(generator, conditions, 10, seed=0, settings=settings)
    assert caught.value.rule == "condition-rare"
    assert "'age == 90'" in caught.value.message and "draws" in caught.value.message


def test_a_condition_too_rare_for_the_draw_budget_fails_before_drawing(
    generator: ConditionalGenerator,
) -> None:
    settings = ConditionalSettings(max_draws=5_000)
    conditions = bind_conditions(["age >= 80"], generator.codec)
    with pytest.raises(ConditionError, match="too rare"):
        sample_conditional(generator, conditions, 1000, seed=0, settings=settings)


def test_without_conditions_the_draw_is_plain_and_exact(generator: ConditionalGenerator) -> None:
    _, sample = _draw(generator, [], rows=99)
    assert sample.frame.height == 99
    assert sample.summary()["estimated_rate"] == 1.0
    assert sum(group.draws for group in sample.groups) == 99
