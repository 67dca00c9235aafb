"""Whether synthetic rows reproduce real training rows.

Distance to closest record (DCR) compares how close synthetic rows come to the training rows
with how close real rows the generator never saw (the holdout) come to them. A generator that
memorises sits closer than the holdout: a ratio below 1 is a warning, about 1 is what fresh
samples of the same population give.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from fairdistill.models.evaluation.embedding import nearest_neighbours, subsample_rows

DEFAULT_MAX_ROWS = 5000
DCR_HISTOGRAM_BINS = 30
# The share of fresh real rows closer to the training rows than the holdout's low quantile.
LOW_QUANTILE = 0.05


def distance_to_closest_record(
    train_emb: np.ndarray,
    synth_emb: np.ndarray,
    holdout_emb: np.ndarray,
    seed: int,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, float]:
    """Median and 5th percentile of synthetic→train and holdout→train nearest distances.

    The summary (:func:`dcr_summary`) of :func:`closest_record_distances`.
    """
    return dcr_summary(*closest_record_distances(train_emb, synth_emb, holdout_emb, seed, max_rows))


def closest_record_distances(
    train_emb: np.ndarray,
    synth_emb: np.ndarray,
    holdout_emb: np.ndarray,
    seed: int,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each synthetic row, and from each holdout row, to its closest training row.

    The first column of :func:`nearest_record_distances` with one neighbour.
    """
    synthetic, holdout = nearest_record_distances(
        train_emb, synth_emb, holdout_emb, seed, max_rows, neighbours=1
    )
    return synthetic[:, 0], holdout[:, 0]


def nearest_record_distances(
    train_emb: np.ndarray,
    synth_emb: np.ndarray,
    holdout_emb: np.ndarray,
    seed: int,
    max_rows: int = DEFAULT_MAX_ROWS,
    neighbours: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each synthetic row, and from each holdout row, to its ``neighbours``
    closest training rows (one column each, closest first).

    All embeddings come from one fitted :class:`Embedding`. The training rows are searched in
    full, as a subsample would hide the very copies this looks for; the synthetic and holdout
    rows asked about are at most ``max_rows`` each, drawn with ``default_rng(seed)``.
    """
    if not (train_emb.shape[0] and synth_emb.shape[0] and holdout_emb.shape[0]):
        raise ValueError("distance to closest record needs training, synthetic and holdout rows")
    if train_emb.shape[0] < neighbours:
        raise ValueError(f"{neighbours} nearest records need at least {neighbours} training rows")
    rng = np.random.default_rng(seed)
    synthetic = _nearest(train_emb, subsample_rows(synth_emb, max_rows, rng), neighbours)
    holdout = _nearest(train_emb, subsample_rows(holdout_emb, max_rows, rng), neighbours)
    return synthetic, holdout


def dcr_summary(synthetic: np.ndarray, holdout: np.ndarray) -> dict[str, float]:
    """Median and 5th percentile of both distance samples, and their ratios.

    Ratios are synthetic over holdout (NaN when the holdout statistic is 0);
    ``synthetic_share_below_holdout_p5`` is the share of synthetic rows closer to the training
    data than the holdout's 5th percentile (about 0.05 for a generator that does not copy).
    """
    summary = {
        "synthetic_median": float(np.median(synthetic)),
        "synthetic_p5": float(np.quantile(synthetic, LOW_QUANTILE)),
        "holdout_median": float(np.median(holdout)),
        "holdout_p5": float(np.quantile(holdout, LOW_QUANTILE)),
    }
    summary["median_ratio"] = _ratio(summary["synthetic_median"], summary["holdout_median"])
    summary["p5_ratio"] = _ratio(summary["synthetic_p5"], summary["holdout_p5"])
    summary["synthetic_share_below_holdout_p5"] = float((synthetic < summary["holdout_p5"]).mean())
    return summary


def dcr_histogram(
    synthetic: np.ndarray, holdout: np.ndarray, bins: int = DCR_HISTOGRAM_BINS
) -> dict[str, list[float]]:
    """Row counts of both distance samples over shared bins, for a report to plot.

    The bins span 0 to the larger of the two 99th percentiles; farther distances count in the
    last bin, so a few outliers cannot squeeze every other row into the first one.
    """
    upper = max(float(np.quantile(synthetic, 0.99)), float(np.quantile(holdout, 0.99)))
    edges = np.linspace(0.0, upper if upper > 0 else 1.0, bins + 1)

    def counts(distances: np.ndarray) -> list[float]:
        return np.histogram(np.minimum(distances, edges[-1]), bins=edges)[0].astype(float).tolist()

    return {"edges": edges.tolist(), "synthetic": counts(synthetic), "holdout": counts(holdout)}


def exact_copy_rate(
    train: pl.DataFrame, other: pl.DataFrame, columns: Sequence[str] | None = None
) -> float:
    """Share of ``other``'s rows equal to some ``train`` row on every shared column (or on
    ``columns`` only).

    Missing values equal missing values. Columns whose types differ between the frames are
    compared as text. NaN when ``other`` is empty.
    """
    names = other.columns if columns is None else columns
    shared = [name for name in names if name in train.columns and name in other.columns]
    if not shared:
        raise ValueError("the frames share no column to compare rows on")
    if other.height == 0:
        return float("nan")
    train_keys, other_keys = train.select(shared), other.select(shared)
    mismatched = [name for name in shared if train_keys.schema[name] != other_keys.schema[name]]
    if mismatched:
        as_text = [pl.col(name).cast(pl.String) for name in mismatched]
        train_keys, other_keys = train_keys.with_columns(as_text), other_keys.with_columns(as_text)
    copies = other_keys.join(train_keys.unique(), on=shared, how="semi", nulls_equal=True)
    return copies.height / other.height


def _nearest(reference: np.ndarray, queries: np.ndarray, neighbours: int) -> np.ndarray:
    distances, _ = nearest_neighbours(reference, queries, neighbours)
    return distances


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
