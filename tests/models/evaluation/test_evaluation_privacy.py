from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.privacy import (
    closest_record_distances,
    dcr_histogram,
    dcr_summary,
    distance_to_closest_record,
    exact_copy_rate,
)
from fairdistill.models.evaluation.report import EvaluationResult, record_copies

TRAIN = pl.DataFrame(
    {
        "a": pl.Series([1, 2, 3, None], dtype=pl.Int64),
        "b": ["x", "y", None, "z"],
        "c": [0.5, 1.5, 2.5, 3.5],
    }
)


def test_a_copy_is_all_copies_and_disjoint_rows_are_none() -> None:
    assert exact_copy_rate(TRAIN, TRAIN) == 1.0
    disjoint = TRAIN.with_columns(pl.col("c") + 0.25)
    assert exact_copy_rate(TRAIN, disjoint) == 0.0


def test_missing_values_match_missing_values() -> None:
    other = pl.DataFrame(
        {
            "a": pl.Series([None, 3, 3], dtype=pl.Int64),
            "b": ["z", None, "x"],
            "c": [3.5, 2.5, 2.5],
        }
    )
    assert exact_copy_rate(TRAIN, other) == pytest.approx(2 / 3)


def test_only_shared_columns_count_and_types_may_differ() -> None:
    narrower = TRAIN.select("b", "c").with_columns(pl.col("c").cast(pl.String))
    assert exact_copy_rate(TRAIN, narrower) == 1.0
    assert math.isnan(exact_copy_rate(TRAIN, TRAIN.head(0)))
    with pytest.raises(ValueError, match="share no column"):
        exact_copy_rate(TRAIN, pl.DataFrame({"d": [1]}))


def test_the_holdout_baseline_is_counted_on_the_synthetic_rows_columns() -> None:
    """An identifier the spec ignores makes every real row unique; the synthetic rows lack
    it, so the holdout's copy rate must be counted without it too."""
    with_ids = TRAIN.with_columns(id=pl.Series([10, 11, 12, 13]))
    holdout = TRAIN.with_columns(id=pl.Series([20, 21, 22, 23]))
    assert exact_copy_rate(with_ids, holdout) == 0.0
    assert exact_copy_rate(with_ids, holdout, TRAIN.columns) == 1.0

    result = EvaluationResult()
    record_copies(result, with_ids, holdout, synthetic=TRAIN.head(2))
    assert result.metrics["privacy.exact_copy_rate"] == 1.0
    assert result.metrics["privacy.holdout_exact_copy_rate"] == 1.0


def test_exact_copy_rate_is_fast_on_large_frames() -> None:
    rng = np.random.default_rng(0)
    big = pl.DataFrame({f"n{i}": rng.integers(0, 1000, 50_000) for i in range(12)})
    half_copied = pl.concat([big.head(25_000), big.tail(25_000).with_columns(pl.col("n0") + 1000)])
    assert exact_copy_rate(big, half_copied) == pytest.approx(0.5)


RNG = np.random.default_rng(1)
TRAIN_EMB = RNG.normal(size=(3000, 6)).astype(np.float32)
HOLDOUT_EMB = RNG.normal(size=(1000, 6)).astype(np.float32)


def test_copies_are_at_distance_zero() -> None:
    result = distance_to_closest_record(TRAIN_EMB, TRAIN_EMB[:800], HOLDOUT_EMB, seed=0)
    assert result["synthetic_median"] == 0.0 and result["synthetic_p5"] == 0.0
    assert result["median_ratio"] == 0.0
    assert result["synthetic_share_below_holdout_p5"] == 1.0
    assert result["holdout_median"] > 0


def test_fresh_samples_sit_as_far_as_the_holdout() -> None:
    fresh = RNG.normal(size=(1000, 6)).astype(np.float32)
    result = distance_to_closest_record(TRAIN_EMB, fresh, HOLDOUT_EMB, seed=0, max_rows=600)
    assert 0.85 < result["median_ratio"] < 1.15
    assert result["synthetic_share_below_holdout_p5"] < 0.12
    with pytest.raises(ValueError, match="needs"):
        distance_to_closest_record(TRAIN_EMB, fresh[:0], HOLDOUT_EMB, seed=0)


def test_distances_and_their_summary_agree() -> None:
    synthetic, holdout = closest_record_distances(TRAIN_EMB, TRAIN_EMB[:800], HOLDOUT_EMB, 0, 500)
    assert synthetic.shape == (500,) and holdout.shape == (500,)
    assert (synthetic == 0).all() and (holdout > 0).all()
    assert dcr_summary(synthetic, holdout) == distance_to_closest_record(
        TRAIN_EMB, TRAIN_EMB[:800], HOLDOUT_EMB, seed=0, max_rows=500
    )


def test_the_histogram_counts_every_row_on_shared_bins() -> None:
    synthetic = np.array([0.0, 0.0, 0.5, 1.0, 2.0])
    holdout = np.concatenate([np.linspace(0.1, 2.0, 99), [50.0]])
    histogram = dcr_histogram(synthetic, holdout, bins=4)
    edges = histogram["edges"]
    assert len(edges) == 5 and edges[0] == 0.0
    # The bins stop at the larger 99th percentile; the far outlier lands in the last bin.
    assert edges[-1] == pytest.approx(float(np.quantile(holdout, 0.99)))
    assert sum(histogram["synthetic"]) == 5 and sum(histogram["holdout"]) == 100
    assert histogram["synthetic"][0] == 3
    assert histogram["holdout"][-1] >= 1
    copies = dcr_histogram(np.zeros(10), np.zeros(10), bins=3)
    assert copies["edges"][-1] == 1.0 and copies["synthetic"] == [10.0, 0.0, 0.0]
