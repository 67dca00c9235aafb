"""All evaluation metrics of one synthetic frame against the held-out real data.

``evaluate_synthetic`` returns flat metrics with MLflow-valid names and nested tables for the
report. Metric names (``<attr>`` is a sensitive column, or ``intersection`` when there are
several; ``<family>`` a classifier family; ``<col>`` a column):

- ``real.positive_rate``, ``synthetic.positive_rate``, ``synthetic.rows``,
  ``synthetic.missing_target_share`` (those rows are left out of everything else);
- ``label_parity.<attr>`` (min/max positive-label rate between groups in the synthetic data),
  ``label_parity.<attr>.difference``, and the same under ``real.`` for the real training data;
- ``trtr|tstr|tsts.<family>.{auroc,f1,accuracy,positive_prediction_rate,trained}`` and
  ``trtr|tstr|tsts.<family>.<attr>.{demographic_parity_ratio,...,equalized_odds_difference}``;
  ``tstr.<family>.auroc_ratio_to_trtr``;
- ``fidelity.{alpha_precision,beta_recall,authenticity,density,coverage,mean_tvd,
  mean_wasserstein,mean_ks,column_shapes,correlation_difference,discriminator_auc}``,
  ``fidelity.tvd.<col>``, ``fidelity.wasserstein.<col>``, ``fidelity.ks.<col>``;
- ``privacy.dcr.<statistic>``, ``privacy.exact_copy_rate`` (synthetic rows that copy a training
  row) and ``privacy.holdout_exact_copy_rate`` (the same for the real test rows: the baseline),
  ``privacy.nndr_median``;
- ``holdout.fidelity.<name>`` and ``holdout.privacy.nndr_median``: the same figures with the
  real test rows in place of the synthetic ones, the reference an ideal generator reaches (see
  ``reference.py``).

Tables (plain lists and dicts, JSON-ready) hold what a report shows beyond the metrics:
``label_parity``, ``utility`` (per-group rates of every protocol), ``fidelity`` (the
alpha/beta curves, per-column distances, ``marginal_histograms`` of every column and both
``association`` matrices), ``privacy`` (the DCR summary and ``dcr_histogram``, row counts of the
synthetic and holdout distances over shared bins), ``holdout_reference`` (the holdout's figures
and the sample sizes behind them), ``timings_s`` and ``sampling``.

Sampling: the sample-level fidelity metrics use at most ``max_rows`` real training and synthetic
rows, and DCR at most ``max_rows`` synthetic and test rows against the full training data (see
``fidelity.py`` and ``privacy.py``); classifiers, marginals, associations and exact copies use
every row. On Adult-sized inputs (36k train, 9k test, 36k synthetic) this takes about
10-15 s on two CPU cores, most of it training the six classifiers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fairdistill.models.evaluation.embedding import fit_embedding
from fairdistill.models.evaluation.fairness import (
    FAIRNESS_SUMMARY,
    grouping_names,
    label_parity,
    positive_labels,
)
from fairdistill.models.evaluation.fidelity import (
    DEFAULT_MAX_ROWS,
    NEIGHBOURS,
    RealNeighbours,
    column_shapes,
    correlation_difference,
    marginal_distances,
    marginal_histograms,
    sample_fidelity,
)
from fairdistill.models.evaluation.privacy import (
    dcr_histogram,
    dcr_summary,
    exact_copy_rate,
    nearest_record_distances,
)
from fairdistill.models.evaluation.protocols import PROTOCOLS, UTILITY_METRICS
from fairdistill.models.evaluation.reference import (
    DISCRIMINATOR_MAX_ROWS,
    discriminator_auc,
    distance_ratios,
)
from fairdistill.models.evaluation.utility import FAMILIES, Family, tstr_trtr
from fairdistill.models.spec import DatasetSpec

REFERENCE_SAMPLE_FIGURES = ("alpha_precision", "beta_recall", "authenticity", "density", "coverage")
# The sample figures the report keeps in their own table, apart from precision and recall.
DENSITY_FIGURES = ("density", "coverage")
# MLflow also allows "/" and ":", but a "/" could make a name resolve to another path.
_INVALID_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_\-. ]")


@dataclass
class EvaluationResult:
    """Flat metrics for tracking and gates; nested tables (plain lists and dicts) for reports."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)


def metric_name(*parts: str) -> str:
    """Join parts with dots, replacing characters MLflow refuses in a metric name with ``_``."""
    return ".".join(_INVALID_NAME_CHARACTERS.sub("_", part) for part in parts)


def evaluate_synthetic(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    *,
    seed: int,
    families: Sequence[Family] = FAMILIES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> EvaluationResult:
    """Fairness, utility, fidelity and privacy of ``synthetic`` (see the module notes)."""
    check_columns(real_train, real_test, synthetic, spec)
    result = EvaluationResult()
    timings: dict[str, float] = {}
    synthetic, missing_target = rows_with_target(synthetic, spec)
    if synthetic.height <= NEIGHBOURS:
        raise ValueError(
            f"the synthetic data has {synthetic.height} rows with a label; "
            f"evaluation needs more than {NEIGHBOURS}"
        )
    record_data(result, real_train, synthetic, missing_target, spec)
    with timed(timings, "utility"):
        record_utility(result, tstr_trtr(real_train, real_test, synthetic, spec, seed, families))
    with timed(timings, "embedding"):
        embedding = fit_embedding(real_train, spec, include_target=True)
        train_emb, synth_emb = embedding.transform(real_train), embedding.transform(synthetic)
        test_emb = embedding.transform(real_test)
    with timed(timings, "fidelity"):
        neighbours = record_fidelity(
            result, real_train, synthetic, train_emb, synth_emb, spec, seed, max_rows
        )
    with timed(timings, "privacy"):
        record_copies(result, real_train, real_test, synthetic)
        record_distances(result, train_emb, synth_emb, test_emb, seed, max_rows)
    with timed(timings, "holdout_reference"):
        embeddings = train_emb, synth_emb, test_emb
        record_holdout_reference(
            result, real_train, real_test, embeddings, spec, seed, max_rows, neighbours
        )
    result.tables["timings_s"] = timings
    result.tables["sampling"] = {"max_rows": max_rows, "seed": seed}
    return result


def check_columns(
    real_train: pl.DataFrame, real_test: pl.DataFrame, synthetic: pl.DataFrame, spec: DatasetSpec
) -> None:
    """Refuse frames that lack a column of the spec or hold no rows, naming which frame."""
    needed = [spec.target.column, *spec.sensitive_columns, *spec.feature_columns]
    for label, frame in (
        ("real training", real_train),
        ("real test", real_test),
        ("synthetic", synthetic),
    ):
        missing = [name for name in needed if name not in frame.columns]
        if missing:
            raise ValueError(f"the {label} data lacks the columns {', '.join(missing)}")
        if frame.height == 0:
            raise ValueError(f"the {label} data has no rows")


def rows_with_target(frame: pl.DataFrame, spec: DatasetSpec) -> tuple[pl.DataFrame, int]:
    """``frame`` without the rows whose target is missing, and how many those were."""
    missing = frame.get_column(spec.target.column).null_count()
    return (frame.drop_nulls(spec.target.column) if missing else frame), missing


def record_data(
    result: EvaluationResult,
    real_train: pl.DataFrame,
    synthetic: pl.DataFrame,
    missing_target: int,
    spec: DatasetSpec,
) -> None:
    """Record the row counts, positive rates and label parity of the real and synthetic data."""
    metrics = result.metrics
    metrics["synthetic.rows"] = float(synthetic.height)
    metrics["synthetic.missing_target_share"] = missing_target / (synthetic.height + missing_target)
    metrics["real.positive_rate"] = _positive_rate(real_train, spec)
    metrics["synthetic.positive_rate"] = _positive_rate(synthetic, spec)
    parity: dict[str, dict[str, Any]] = {"real": {}, "synthetic": {}}
    for source, frame, prefix in (("real", real_train, ("real",)), ("synthetic", synthetic, ())):
        for name in grouping_names(spec):
            table = label_parity(frame, spec, name)
            parity[source][name] = table
            metrics[metric_name(*prefix, "label_parity", name)] = table["ratio"]
            metrics[metric_name(*prefix, "label_parity", name, "difference")] = table["difference"]
    result.tables["label_parity"] = parity


def record_utility(result: EvaluationResult, utility: dict[str, dict[str, Any]]) -> None:
    """Record the metrics of every outcome of :func:`tstr_trtr` (or of its image counterpart)."""
    for family, protocols in utility.items():
        for protocol in PROTOCOLS:
            outcome = protocols[protocol]
            prefix = (protocol, family)
            result.metrics[metric_name(*prefix, "trained")] = float(outcome["trained"])
            for metric in UTILITY_METRICS:
                result.metrics[metric_name(*prefix, metric)] = outcome["utility"][metric]
            for grouping, fairness in outcome["fairness"].items():
                for metric in FAIRNESS_SUMMARY:
                    result.metrics[metric_name(*prefix, grouping, metric)] = fairness[metric]
        result.metrics[metric_name("tstr", family, "auroc_ratio_to_trtr")] = protocols[
            "auroc_ratio_to_trtr"
        ]
    result.tables["utility"] = utility


def record_fidelity(
    result: EvaluationResult,
    real_train: pl.DataFrame,
    synthetic: pl.DataFrame,
    real_emb: np.ndarray,
    synth_emb: np.ndarray,
    spec: DatasetSpec,
    seed: int,
    max_rows: int,
) -> RealNeighbours:
    """Record sample-level fidelity in the embedding, per-column marginals and associations;
    return the real sample's neighbours for the holdout reference, which uses the same."""
    figures, neighbours = sample_fidelity(real_emb, synth_emb, seed, max_rows)
    faithful = {name: value for name, value in figures.items() if name not in DENSITY_FIGURES}
    density = {name: figures[name] for name in DENSITY_FIGURES}
    marginals = marginal_distances(real_train, synthetic, spec)
    histograms = marginal_histograms(real_train, synthetic, spec)
    association = correlation_difference(real_train, synthetic, spec)
    for name in ("alpha_precision", "beta_recall", "authenticity"):
        result.metrics[metric_name("fidelity", name)] = faithful[name]
    for name, value in density.items():
        result.metrics[metric_name("fidelity", name)] = value
    for name in ("mean_tvd", "mean_wasserstein", "mean_ks"):
        result.metrics[metric_name("fidelity", name)] = marginals[name]
    for distance in ("tvd", "wasserstein", "ks"):
        for column, value in marginals[distance].items():
            result.metrics[metric_name("fidelity", distance, column)] = value
    result.metrics["fidelity.column_shapes"] = column_shapes(marginals)
    result.metrics["fidelity.correlation_difference"] = association.mean_absolute_difference
    result.tables["fidelity"] = {
        "alpha_precision_beta_recall": faithful,
        "density_coverage": density,
        "marginals": marginals,
        "marginal_histograms": histograms,
        "association": association.as_table(),
    }
    return neighbours


def record_copies(
    result: EvaluationResult,
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
) -> None:
    """Record the shares of synthetic and of real test rows that copy a training row exactly.

    Both on the columns the synthetic rows have: the real rows also hold the columns the spec
    ignores (an identifier makes every real row unique), and a baseline counted on those
    would call any generator a copier.
    """
    modelled = [name for name in synthetic.columns if name in real_train.columns]
    copies = {
        "exact_copy_rate": exact_copy_rate(real_train, synthetic, modelled),
        "holdout_exact_copy_rate": exact_copy_rate(real_train, real_test, modelled),
    }
    for name, value in copies.items():
        result.metrics[metric_name("privacy", name)] = value
    result.tables.setdefault("privacy", {}).update(copies)


def record_distances(
    result: EvaluationResult,
    train_emb: np.ndarray,
    synth_emb: np.ndarray,
    test_emb: np.ndarray,
    seed: int,
    max_rows: int,
) -> None:
    """Record distances to the closest training record, synthetic and holdout, in the embedding."""
    # Two neighbours: the closest gives the DCR, the ratio of the two the NNDR.
    synthetic, holdout = nearest_record_distances(train_emb, synth_emb, test_emb, seed, max_rows)
    result.metrics["privacy.nndr_median"] = float(np.median(distance_ratios(synthetic)))
    result.metrics["holdout.privacy.nndr_median"] = float(np.median(distance_ratios(holdout)))
    synthetic, holdout = synthetic[:, 0], holdout[:, 0]
    dcr = dcr_summary(synthetic, holdout)
    for name, value in dcr.items():
        result.metrics[metric_name("privacy", "dcr", name)] = value
    privacy = result.tables.setdefault("privacy", {})
    privacy["dcr"] = dcr
    privacy["dcr_histogram"] = dcr_histogram(synthetic, holdout)


def record_holdout_reference(
    result: EvaluationResult,
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    embeddings: tuple[np.ndarray, np.ndarray, np.ndarray],
    spec: DatasetSpec,
    seed: int,
    max_rows: int,
    neighbours: RealNeighbours | None = None,
) -> None:
    """Record the discriminator AUC of the synthetic rows, and under ``holdout.`` every
    fidelity figure as the real test rows score them (the NNDR comes with the distances).

    The holdout's sample-level figures compare equal samples of training and test rows (at
    most ``max_rows``, at most the test rows), as the synthetic ones compare equal samples
    of training and synthetic rows; both discriminators see the same number of rows.
    ``neighbours`` (from :func:`record_fidelity`) saves the real rows' own search when the
    two samples are the same rows.
    """
    train_emb, synth_emb, test_emb = embeddings
    metrics = result.metrics
    compared = min(max_rows, DISCRIMINATOR_MAX_ROWS, synth_emb.shape[0], test_emb.shape[0])
    holdout_rows = min(max_rows, test_emb.shape[0])
    metrics["fidelity.discriminator_auc"] = discriminator_auc(train_emb, synth_emb, seed, compared)
    reference, _ = sample_fidelity(train_emb, test_emb, seed, holdout_rows, known=neighbours)
    marginals = marginal_distances(real_train, real_test, spec)
    association = correlation_difference(real_train, real_test, spec)
    holdout = {
        **{name: reference[name] for name in REFERENCE_SAMPLE_FIGURES},
        "mean_tvd": marginals["mean_tvd"],
        "mean_ks": marginals["mean_ks"],
        "column_shapes": column_shapes(marginals),
        "correlation_difference": association.mean_absolute_difference,
        "discriminator_auc": discriminator_auc(train_emb, test_emb, seed, compared),
    }
    for name, value in holdout.items():
        metrics[metric_name("holdout", "fidelity", name)] = value
    result.tables["holdout_reference"] = {
        "fidelity": holdout,
        "privacy": {"nndr_median": metrics["holdout.privacy.nndr_median"]},
        "sample_rows": holdout_rows,
        "discriminator_rows": compared,
    }


def _positive_rate(frame: pl.DataFrame, spec: DatasetSpec) -> float:
    return float(positive_labels(frame, spec).mean())


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the ``with`` block takes to ``timings[name]``."""
    start = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
