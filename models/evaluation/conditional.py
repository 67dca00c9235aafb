"""How useful and how fair conditionally generated rows are, on the matching real rows.

Rows drawn under conditions (say ``age >= 60``) stand for a slice of the population, so
they are judged on that slice: a classifier of the target trained on the conditional rows
(TSTR) is tested on the held-out real test rows that meet the same conditions, and so is a
classifier trained on the real training rows of the slice (TRTR, the reference). Each
reports AUROC, F1, accuracy, positive prediction rate and the fairness ratios of every
sensitive attribute, as the run's own evaluation does.

A slice of fewer than :data:`MIN_SLICE_ROWS` real test rows gives numbers that are noise;
the evaluation then records why there is no number instead of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from fairdistill.models.conditions import ConditionSet
from fairdistill.models.evaluation.fairness import positive_labels
from fairdistill.models.evaluation.utility import Family, tstr_trtr
from fairdistill.models.spec import DatasetSpec

MIN_SLICE_ROWS = 50
EVALUATED = "evaluated"
NOT_EVALUATED = "not evaluated"


def evaluate_conditional(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    conditions: ConditionSet,
    *,
    seed: int,
    families: Sequence[Family] = ("gradient_boosting",),
    min_rows: int = MIN_SLICE_ROWS,
) -> dict[str, Any]:
    """TSTR and TRTR on the real slice meeting ``conditions`` (see the module notes)."""
    test_slice = real_test.filter(pl.Series(conditions.mask(real_test)))
    train_slice = real_train.filter(pl.Series(conditions.mask(real_train)))
    result: dict[str, Any] = {
        "real_test_slice_rows": test_slice.height,
        "real_train_slice_rows": train_slice.height,
        "synthetic_rows": synthetic.height,
        "synthetic_positive_rate": _positive_rate(synthetic, spec),
        "real_slice_positive_rate": _positive_rate(test_slice, spec),
    }
    if test_slice.height < min_rows:
        return {
            **result,
            "status": NOT_EVALUATED,
            "reason": f"only {test_slice.height} real test rows meet the conditions "
            f"(at least {min_rows} needed for a meaningful score)",
        }
    families_result = tstr_trtr(train_slice, test_slice, synthetic, spec, seed, families)
    return {**result, "status": EVALUATED, "reason": None, "families": families_result}


def not_evaluated(reason: str) -> dict[str, Any]:
    """The evaluation's record when the real rows to score against are unavailable."""
    return {"status": NOT_EVALUATED, "reason": reason}


def evaluation_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The evaluation's numbers as flat metric names, e.g. ``gradient_boosting.tstr.auroc``
    or ``gradient_boosting.tstr.fairness.sex.demographic_parity_ratio``."""
    metrics: dict[str, float] = {}
    for key in ("real_test_slice_rows", "real_train_slice_rows", "synthetic_positive_rate"):
        if isinstance(evaluation.get(key), int | float):
            metrics[key] = float(evaluation[key])
    for family, protocols in (evaluation.get("families") or {}).items():
        metrics[f"{family}.auroc_ratio_to_trtr"] = protocols["auroc_ratio_to_trtr"]
        for protocol in ("tstr", "trtr"):
            outcome = protocols[protocol]
            for name, value in outcome["utility"].items():
                metrics[f"{family}.{protocol}.{name}"] = value
            for grouping, values in outcome["fairness"].items():
                for name in ("demographic_parity_ratio", "equalized_odds_ratio"):
                    metrics[f"{family}.{protocol}.fairness.{grouping}.{name}"] = values[name]
    return metrics


def _positive_rate(frame: pl.DataFrame, spec: DatasetSpec) -> float | None:
    if frame.height == 0:
        return None
    return float(positive_labels(frame, spec).mean())
