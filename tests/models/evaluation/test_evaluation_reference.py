"""The holdout reference: each figure as real rows no model saw score it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.evaluation.privacy import (
    closest_record_distances,
    nearest_record_distances,
)
from fairdistill.models.evaluation.reference import discriminator_auc, distance_ratios
from fairdistill.models.reporting.content import FIDELITY_SUMMARY
from fairdistill.models.spec import DatasetSpec


def test_a_discriminator_cannot_tell_two_samples_of_one_distribution_apart() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4))
    assert discriminator_auc(first, second, seed=0, max_rows=1500) == pytest.approx(0.5, abs=0.05)


def test_a_discriminator_finds_a_shifted_column() -> None:
    rng = np.random.default_rng(1)
    real, shifted = rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4))
    shifted[:, 2] += 2.0
    assert discriminator_auc(real, shifted, seed=0, max_rows=1500) > 0.85


def test_the_distance_ratio_is_0_on_a_copy_and_1_between_duplicates() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(size=(400, 3))
    fresh = rng.normal(size=(300, 3))
    on_copies, on_fresh = nearest_record_distances(train, train[:50], fresh, seed=0)
    assert np.all(distance_ratios(on_copies) == 0.0)
    assert 0.5 < float(np.median(distance_ratios(on_fresh))) < 1.0
    doubled, _ = nearest_record_distances(np.vstack([train, train]), train[:20], fresh, seed=0)
    assert np.all(distance_ratios(doubled) == 1.0)


def test_the_closest_record_is_the_first_of_the_two_nearest() -> None:
    rng = np.random.default_rng(3)
    train, synthetic, holdout = (rng.normal(size=(n, 3)) for n in (300, 120, 80))
    closest = closest_record_distances(train, synthetic, holdout, seed=4, max_rows=100)
    two = nearest_record_distances(train, synthetic, holdout, seed=4, max_rows=100)
    for one, both in zip(closest, two, strict=True):
        assert np.array_equal(one, both[:, 0])
        assert np.all(both[:, 0] <= both[:, 1])


def test_held_out_rows_as_the_synthetic_data_score_their_own_reference(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    result = evaluate_synthetic(
        train, test, test, adult_spec, seed=0, families=("logistic_regression",), max_rows=1500
    )
    metrics = result.metrics
    for name in FIDELITY_SUMMARY:
        assert metrics[f"fidelity.{name}"] == pytest.approx(metrics[f"holdout.fidelity.{name}"])
    # The distances ask about two different draws of 1,500 of the 2,000 rows.
    assert metrics["privacy.nndr_median"] == pytest.approx(
        metrics["holdout.privacy.nndr_median"], abs=0.03
    )
    reference = result.tables["holdout_reference"]
    assert reference["sample_rows"] == reference["discriminator_rows"] == 1500
    assert reference["fidelity"]["coverage"] == metrics["holdout.fidelity.coverage"]
    # Fresh real rows: a discriminator barely tells them from training rows.
    assert 0.4 < metrics["holdout.fidelity.discriminator_auc"] < 0.6


def test_copied_training_rows_stand_out_against_the_reference(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    copies = train.head(1500)
    result = evaluate_synthetic(
        train, test, copies, adult_spec, seed=0, families=("logistic_regression",), max_rows=1500
    )
    metrics = result.metrics
    assert metrics["privacy.nndr_median"] == 0.0
    assert metrics["holdout.privacy.nndr_median"] > 0.3
    # A copy of the training rows cannot be told from them either: fidelity alone does not
    # show memorisation, which is why the privacy figures sit beside it.
    assert metrics["fidelity.discriminator_auc"] < 0.6
