"""What goes into a run report, picked out of the evaluation's metrics and tables.

Pure functions of plain values; the task that gathers a report reads the inputs from storage
and MLflow and hands them here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairdistill.models.evaluation.fairness import INTERSECTION
from fairdistill.models.evaluation.privacy import LOW_QUANTILE
from fairdistill.models.evaluation.protocols import PROTOCOLS
from fairdistill.models.reporting.data import (
    Association,
    DistanceHistogram,
    GroupFairness,
    Headline,
    LatentProjection,
    MarginalHistogram,
    ModelSummary,
)

RATIO_METRICS = ("demographic_parity_ratio", "equalized_odds_ratio")
UTILITY_SCORES = ("auroc", "f1", "accuracy")
FIDELITY_SUMMARY = (
    "alpha_precision",
    "beta_recall",
    "authenticity",
    "density",
    "coverage",
    "mean_tvd",
    "mean_ks",
    "column_shapes",
    "correlation_difference",
    "discriminator_auc",
)
# The holdout's own copy rate and distance are the reference column beside these.
PRIVACY_SUMMARY = (
    "exact_copy_rate",
    "dcr.synthetic_median",
    "dcr.median_ratio",
    "dcr.synthetic_share_below_holdout_p5",
    "nndr_median",
)
SHOWN_MARGINALS = 6


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _fairness_of(tables: Mapping[str, Any], classifier: str, protocol: str) -> Mapping[str, Any]:
    return tables["utility"][classifier][protocol]["fairness"]


def headlines(
    tables: Mapping[str, Any], metrics: Mapping[str, float], classifier: str, target: str
) -> list[Headline]:
    """Fairness, utility and fidelity: each a synthetic result beside its real reference.

    Fairness shows the grouping whose TSTR demographic parity ratio is lowest, so the headline
    never hides a worse attribute behind a better one.
    """
    tstr = _fairness_of(tables, classifier, "tstr")
    trtr = _fairness_of(tables, classifier, "trtr")
    ratio = RATIO_METRICS[0]
    worst = min(tstr, key=lambda grouping: _sort_low(_float(tstr[grouping].get(ratio))))
    utility = tables["utility"][classifier]
    return [
        Headline(
            topic="Fairness",
            metric=f"demographic parity ratio, {worst}",
            reference=_float(trtr[worst].get(ratio)),
            synthetic=_float(tstr[worst].get(ratio)),
            reference_label="trained on real data",
            synthetic_label="trained on synthetic data",
            meaning="lowest over highest positive-prediction rate between groups, on real "
            "held-out rows; 1 is parity",
        ),
        Headline(
            topic="Utility",
            metric=f"AUROC predicting {target}",
            reference=_float(utility["trtr"]["utility"]["auroc"]),
            synthetic=_float(utility["tstr"]["utility"]["auroc"]),
            reference_label="trained on real data",
            synthetic_label="trained on synthetic data",
            meaning="how well a classifier ranks real held-out rows; close to the real "
            "reference means the synthetic data is as useful for training",
        ),
        Headline(
            topic="Fidelity",
            metric="alpha-precision",
            reference=1.0,
            synthetic=_float(metrics.get("fidelity.alpha_precision")),
            reference_label="ideal",
            synthetic_label="synthetic data",
            meaning="how well synthetic rows sit where real rows lie, across the real "
            "distribution; fresh real data scores about 1",
        ),
    ]


def _sort_low(value: float) -> float:
    # A ratio that could not be computed sorts last: the headline shows a real number if any.
    return math.inf if math.isnan(value) else value


def group_fairness(
    tables: Mapping[str, Any],
    privileged: Mapping[str, Sequence[str]],
    classifier: str,
) -> list[GroupFairness]:
    """Per grouping: label rates in the data, prediction rates and parity ratios per protocol.

    ``privileged`` maps each sensitive attribute to its privileged values, in the spec's
    order; with several attributes their intersection follows them.
    """
    parity = tables["label_parity"]
    groupings = list(privileged)
    if len(groupings) > 1:
        groupings.append(INTERSECTION)
    sections = []
    for grouping in groupings:
        per_protocol = {p: _fairness_of(tables, classifier, p).get(grouping, {}) for p in PROTOCOLS}
        groups = sorted(
            set(parity["real"][grouping]["positive_rate"])
            | set(parity["synthetic"][grouping]["positive_rate"])
        )
        sections.append(
            GroupFairness(
                attribute=grouping,
                definition=_definition(grouping, privileged),
                groups=groups,
                label_rate={
                    source: {
                        g: float(v) for g, v in parity[source][grouping]["positive_rate"].items()
                    }
                    for source in ("real", "synthetic")
                },
                rows={
                    source: {g: int(v) for g, v in parity[source][grouping]["count"].items()}
                    for source in ("real", "synthetic")
                },
                prediction_rate={
                    protocol: {
                        group: _float(values.get(f"positive_rate.{group}")) for group in groups
                    }
                    for protocol, values in per_protocol.items()
                },
                ratios={
                    protocol: {name: _float(values.get(name)) for name in RATIO_METRICS}
                    for protocol, values in per_protocol.items()
                },
            )
        )
    return sections


def _definition(grouping: str, privileged: Mapping[str, Sequence[str]]) -> str:
    if grouping == INTERSECTION:
        return (
            "Every combination of the attributes' groups: a row's group on each attribute, "
            "joined by |."
        )
    values = ", ".join(str(value) for value in privileged[grouping])
    return f"privileged: {grouping} is {values}; unprivileged: any other value, missing included."


def utility_scores(tables: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Classifier family → protocol → AUROC, F1 and accuracy."""
    return {
        family: {
            protocol: {
                name: _float(outcomes[protocol]["utility"].get(name)) for name in UTILITY_SCORES
            }
            for protocol in PROTOCOLS
        }
        for family, outcomes in tables["utility"].items()
    }


def summary(metrics: Mapping[str, float], prefix: str, names: Sequence[str]) -> dict[str, float]:
    return {name: _float(metrics.get(f"{prefix}.{name}")) for name in names}


# Which side of the real held-out rows' score is better: "higher", "lower", or "match" for
# figures whose ideal is the holdout's own value (density above it means crowding).
FIGURE_DIRECTIONS = {
    "alpha_precision": "higher",
    "beta_recall": "higher",
    "authenticity": "match",
    "density": "match",
    "coverage": "higher",
    "mean_tvd": "lower",
    "mean_ks": "lower",
    "column_shapes": "higher",
    "correlation_difference": "lower",
    "discriminator_auc": "lower",
    "exact_copy_rate": "lower",
    "dcr.synthetic_median": "higher",
    "dcr.synthetic_share_below_holdout_p5": "lower",
    "nndr_median": "higher",
}
# Two scores this close read as equal: about the spread of one figure between two samples of
# 5,000 real rows (relative for distances, which have the table's own scale).
SAME_SCORE = 0.02


def holdout_references(metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """What the real held-out rows score on each fidelity and privacy figure of the report.

    NaN where the evaluation computed no reference (images, or an older run).
    """
    fidelity = summary(metrics, "holdout.fidelity", FIDELITY_SUMMARY)
    privacy = {
        "exact_copy_rate": _float(metrics.get("privacy.holdout_exact_copy_rate")),
        "dcr.synthetic_median": _float(metrics.get("privacy.dcr.holdout_median")),
        # By construction: the holdout's own share below its 5th percentile.
        "dcr.synthetic_share_below_holdout_p5": LOW_QUANTILE
        if "privacy.dcr.holdout_p5" in metrics
        else math.nan,
        "nndr_median": _float(metrics.get("holdout.privacy.nndr_median")),
    }
    return {"fidelity": fidelity, "privacy": privacy}


def reading(name: str, synthetic: float, reference: float) -> str:
    """A plain-language comparison of a synthetic figure with the holdout's."""
    direction = FIGURE_DIRECTIONS.get(name)
    if direction is None or math.isnan(synthetic) or math.isnan(reference):
        return ""
    gap = synthetic - reference
    if abs(gap) <= SAME_SCORE * max(1.0, abs(reference)):
        return "as real held-out rows"
    if direction == "match":
        side = "above" if gap > 0 else "below"
        return f"{side} real held-out rows by {abs(gap):.3f}"
    better = gap > 0 if direction == "higher" else gap < 0
    verdict = "better" if better else "worse"
    return f"{verdict} than real held-out rows by {abs(gap):.3f}"


def most_different_marginals(
    fidelity: Mapping[str, Any], count: int = SHOWN_MARGINALS
) -> tuple[list[MarginalHistogram], str]:
    """The ``count`` columns whose real and synthetic distributions differ most, and why those.

    Categorical columns rank by total variation distance, numeric ones by the
    Kolmogorov-Smirnov statistic; both lie in [0, 1], 0 for identical distributions.
    """
    distances = fidelity["marginals"]
    ranked = [(column, "TVD", value) for column, value in distances["tvd"].items()]
    ranked += [(column, "KS", value) for column, value in distances["ks"].items()]
    ranked.sort(key=lambda item: (-_sort_high(_float(item[2])), item[0]))
    chosen = [
        _histogram(column, name, _float(value), fidelity["marginal_histograms"][column])
        for column, name, value in ranked[:count]
    ]
    note = (
        f"The {len(chosen)} of {len(ranked)} columns whose real and synthetic distributions "
        "differ most: total variation distance (TVD) for categorical columns, "
        "Kolmogorov-Smirnov statistic (KS) for numeric ones; 0 means identical."
    )
    return chosen, note


def _sort_high(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def _histogram(
    column: str, distance_name: str, distance: float, histogram: Mapping[str, Any]
) -> MarginalHistogram:
    categorical = histogram["kind"] == "categorical"
    return MarginalHistogram(
        column=column,
        kind=histogram["kind"],
        distance_name=distance_name,
        distance=distance,
        labels=[str(label) for label in histogram.get("labels", [])] if categorical else [],
        edges=[] if categorical else [float(edge) for edge in histogram["edges"]],
        real=[float(share) for share in histogram["real"]],
        synthetic=[float(share) for share in histogram["synthetic"]],
        missing={k: _float(v) for k, v in histogram.get("missing", {}).items()},
    )


def association(fidelity: Mapping[str, Any]) -> Association:
    table = fidelity["association"]
    return Association(
        columns=[str(column) for column in table["columns"]],
        real=[[_float(value) for value in row] for row in table["real"]],
        synthetic=[[_float(value) for value in row] for row in table["synthetic"]],
        mean_absolute_difference=_float(table["mean_absolute_difference"]),
    )


def distance_histogram(privacy: Mapping[str, Any]) -> DistanceHistogram:
    histogram = privacy["dcr_histogram"]
    return DistanceHistogram(
        edges=[float(edge) for edge in histogram["edges"]],
        synthetic=[float(count) for count in histogram["synthetic"]],
        holdout=[float(count) for count in histogram["holdout"]],
    )


def project_latents(latents: np.ndarray, groups: Mapping[str, Sequence[str]]) -> LatentProjection:
    """The first two principal components of ``latents`` (rows are samples).

    Each axis's sign is fixed so that its largest loading is positive: the same latents always
    give the same picture.
    """
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[0] < 2:
        raise ValueError(f"a projection needs a 2-D array of 2+ rows, got shape {latents.shape}")
    centred = latents - latents.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2]
    axes *= np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])[:, None]
    points = centred @ axes.T
    if points.shape[1] < 2:
        points = np.column_stack([points, np.zeros(points.shape[0])])
    variance = singular**2
    explained = np.zeros(2)
    if variance.sum() > 0:
        explained[: min(2, variance.size)] = variance[:2] / variance.sum()
    return LatentProjection(
        points=points.round(5).tolist(),
        explained_variance=[float(v) for v in explained],
        groups={name: [str(value) for value in values] for name, values in groups.items()},
    )


def model_summary(
    *,
    name: str,
    role: str,
    parameters: int,
    encoder_parameters: int,
    history: Sequence[Mapping[str, float]],
    probe_auroc: Mapping[str, float],
    latents: LatentProjection | None,
    mlflow_run_id: str | None,
) -> ModelSummary:
    """A model's size, its per-epoch training metrics as series, and its latent picture."""
    names = list(dict.fromkeys(key for epoch in history for key in epoch))
    return ModelSummary(
        name=name,
        role=role,
        parameters=int(parameters),
        encoder_parameters=int(encoder_parameters),
        history={key: [_float(epoch.get(key)) for epoch in history] for key in names},
        probe_auroc={key: _float(value) for key, value in probe_auroc.items()},
        latents=latents,
        mlflow_run_id=mlflow_run_id,
    )
