from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.embedding import fit_embedding
from fairdistill.models.evaluation.fidelity import (
    MISSING_LEVEL,
    OTHER_LEVELS,
    correlation_difference,
    marginal_distances,
    marginal_histograms,
    real_neighbours,
    sample_fidelity,
)
from fairdistill.models.spec import DatasetSpec, complete_spec

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(2000, 8))
SAME = RNG.normal(size=(2000, 8))
SHIFTED = RNG.normal(size=(2000, 8)) + 1.0
COLLAPSED = RNG.normal(size=(2000, 8)) * 0.2


def sample_scores(synthetic: np.ndarray) -> dict[str, float]:
    return sample_fidelity(REAL, synthetic, seed=0)[0]


def test_samples_of_the_same_distribution_score_high() -> None:
    scores = sample_scores(SAME)
    assert scores["alpha_precision"] > 0.9
    assert scores["beta_recall"] > 0.8
    assert 0.85 < scores["density"] < 1.15
    assert scores["coverage"] > 0.9
    assert 0.35 < scores["authenticity"] < 0.75


@pytest.mark.parametrize("synthetic", [SHIFTED, COLLAPSED], ids=["shifted", "collapsed"])
def test_a_shifted_or_collapsed_distribution_scores_clearly_lower(synthetic: np.ndarray) -> None:
    scores, reference = sample_scores(synthetic), sample_scores(SAME)
    for name in ("alpha_precision", "beta_recall", "coverage"):
        assert scores[name] < reference[name] - 0.4, name


def test_dropping_half_the_modes_lowers_recall_and_coverage_but_not_precision() -> None:
    half = SAME[SAME[:, 0] > 0]
    scores, reference = sample_scores(half), sample_scores(SAME)
    assert scores["alpha_precision"] > 0.9
    assert scores["beta_recall"] < reference["beta_recall"] - 0.1
    assert scores["coverage"] < reference["coverage"] - 0.15


def test_copies_of_real_rows_are_not_authentic() -> None:
    scores = sample_scores(REAL.copy())
    assert scores["authenticity"] == pytest.approx(0.0)
    assert len(scores["alpha_precision_curve"]) == len(scores["levels"]) == 20


def test_subsampling_is_seeded() -> None:
    first = sample_fidelity(REAL, SAME, seed=4, max_rows=500)[0]
    again = sample_fidelity(REAL, SAME, seed=4, max_rows=500)[0]
    assert first == again
    with pytest.raises(ValueError, match="more than 5 rows"):
        sample_fidelity(REAL, SAME[:3], seed=0)


def test_known_real_neighbours_are_used_only_for_the_rows_they_belong_to() -> None:
    fresh, neighbours = sample_fidelity(REAL, SAME, seed=0, max_rows=800)
    # The holdout reference scores other rows against the same real sample.
    reused, kept = sample_fidelity(REAL, SHIFTED, seed=0, max_rows=800, known=neighbours)
    assert kept is neighbours
    assert reused == sample_fidelity(REAL, SHIFTED, seed=0, max_rows=800)[0]
    # Another sample of the real rows (another seed) must not be scored with them.
    other, recomputed = sample_fidelity(REAL, SAME, seed=1, max_rows=800, known=neighbours)
    assert recomputed is not neighbours
    assert other == sample_fidelity(REAL, SAME, seed=1, max_rows=800)[0]
    assert fresh != other


def test_real_neighbours_skip_the_row_itself() -> None:
    rows = np.array([[0.0], [1.0], [3.0], [7.0]])
    neighbours = real_neighbours(rows, k=2)
    assert neighbours.kth(1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert neighbours.kth(2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_adult_halves_are_faithful_in_the_embedding(
    adult_split: tuple[pl.DataFrame, pl.DataFrame], adult_spec: DatasetSpec
) -> None:
    train, test = adult_split
    embedding = fit_embedding(train, adult_spec)
    real, other = embedding.transform(train), embedding.transform(test)
    scores = sample_fidelity(real, other, seed=0)[0]
    assert scores["alpha_precision"] > 0.85 and scores["beta_recall"] > 0.7
    assert scores["coverage"] > 0.85


MIXED = pl.DataFrame(
    {
        "colour": ["red", "red", "blue", "blue", None, "red", "blue", "red"],
        "size": [1.0, 2.0, 3.0, 4.0, 5.0, None, 7.0, 8.0],
        "weight": [2.0, 4.1, 5.9, 8.0, 10.2, 12.0, 13.8, 16.1],
        "sex": ["M", "F", "M", "F", "M", "F", "M", "F"],
        "y": ["yes", "yes", "no", "no", "no", "yes", "no", "yes"],
    }
)
MIXED_SPEC = complete_spec(
    DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": {"column": "y", "positive": "yes"},
            "sensitive": [{"column": "sex", "privileged": ["M"]}],
        }
    ),
    MIXED,
)


def test_identical_frames_have_zero_marginal_distance() -> None:
    result = marginal_distances(MIXED, MIXED, MIXED_SPEC)
    assert set(result["tvd"]) == {"sex", "colour", "y"}
    assert result["mean_tvd"] == 0.0
    assert result["mean_wasserstein"] == pytest.approx(0.0)
    assert result["mean_ks"] == 0.0


def test_marginal_distances_on_known_shifts() -> None:
    changed = MIXED.with_columns(
        pl.Series("colour", ["red", "red", "red", "red", "blue", "red", "blue", None]),
        (pl.col("weight") + 100.0),
    )
    result = marginal_distances(MIXED, changed, MIXED_SPEC)
    # colour shares red/blue/missing: real 4/3/1 eighths, changed 5/2/1: TVD = (1 + 1) / 16.
    assert result["tvd"]["colour"] == pytest.approx(1 / 8)
    assert result["ks"]["weight"] == 1.0
    assert result["wasserstein"]["weight"] == pytest.approx(100.0 / MIXED["weight"].std())
    flipped = MIXED.with_columns(pl.lit("yes").alias("y"))
    assert marginal_distances(MIXED, flipped, MIXED_SPEC)["tvd"]["y"] == pytest.approx(0.5)
    emptied = MIXED.with_columns(pl.lit(None, pl.Float64).alias("size"))
    emptied_result = marginal_distances(MIXED, emptied, MIXED_SPEC)
    assert math.isnan(emptied_result["ks"]["size"])
    assert emptied_result["missing_share_difference"]["size"] == pytest.approx(7 / 8)


def test_marginal_histograms_share_bins_and_account_for_every_row() -> None:
    changed = MIXED.with_columns(
        pl.Series("colour", ["red", "green", "pink", "red", "red", "red", "red", "red"]),
        pl.col("size").fill_null(20.0),
    )
    histograms = marginal_histograms(MIXED, changed, MIXED_SPEC, bins=4, max_levels=1)
    assert set(histograms) == {"sex", "colour", "y", "size", "weight"}
    colour = histograms["colour"]
    # red is the most frequent real level; blue, green and pink are the rest; one real null.
    assert colour["labels"] == ["red", OTHER_LEVELS, MISSING_LEVEL]
    assert colour["real"] == [0.5, 0.375, 0.125]
    assert colour["synthetic"] == [0.75, 0.25, 0.0]
    size = histograms["size"]
    assert size["kind"] == "numeric" and size["edges"][0] == 1.0 and size["edges"][-1] == 20.0
    assert size["missing"] == {"real": 0.125, "synthetic": 0.0}
    assert sum(size["real"]) + size["missing"]["real"] == pytest.approx(1.0)
    assert sum(size["synthetic"]) == pytest.approx(1.0)
    assert size["synthetic"][-1] == pytest.approx(1 / 8)


def test_identical_frames_have_identical_associations() -> None:
    comparison = correlation_difference(MIXED, MIXED, MIXED_SPEC)
    assert comparison.mean_absolute_difference == 0.0
    assert comparison.columns == ("sex", "colour", "y", "size", "weight")
    assert np.allclose(comparison.real, comparison.real.T)
    assert np.allclose(np.diag(comparison.real), 1.0)
    table = comparison.as_table()
    assert len(table["real"]) == 5 and table["mean_absolute_difference"] == 0.0


def test_associations_have_known_values_and_shuffling_breaks_them(
    adult: pl.DataFrame, adult_spec: DatasetSpec
) -> None:
    spec = adult_spec
    comparison = correlation_difference(adult, adult, spec)
    index = {name: i for i, name in enumerate(comparison.columns)}
    # education determines education_num exactly: the correlation ratio is 1.
    assert comparison.real[index["education"], index["education_num"]] == pytest.approx(1.0)
    # relationship "Husband"/"Wife" nearly determines sex.
    assert comparison.real[index["sex"], index["relationship"]] > 0.6
    shuffled = adult.with_columns(pl.col("education").shuffle(seed=1))
    broken = correlation_difference(adult, shuffled, spec)
    assert broken.synthetic[index["education"], index["education_num"]] < 0.2
    assert broken.mean_absolute_difference > 0.01
