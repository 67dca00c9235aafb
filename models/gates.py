"""Quality gates: what a synthetic dataset must reach before it is published."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GateConfig(BaseModel):
    """Publish only when every set threshold holds; ``None`` switches a gate off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_demographic_parity_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Minimum TSTR demographic parity ratio, for every sensitive attribute.",
    )
    min_equalized_odds_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Minimum TSTR equalized odds ratio, for every sensitive attribute.",
    )
    min_utility_ratio: float | None = Field(
        default=0.8,
        ge=0,
        description="Minimum TSTR AUROC divided by TRTR AUROC (gradient boosting, or the "
        "first classifier family evaluated when gradient boosting was not).",
    )
    max_exact_copy_rate: float | None = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Maximum share of synthetic rows identical to a real training row.",
    )


@dataclass(frozen=True)
class GateDecision:
    gate: str
    metric: str
    comparison: Literal[">=", "<="]
    threshold: float
    value: float
    passed: bool

    @property
    def margin(self) -> float:
        """How far the value is on the right side of the threshold (negative: missed by)."""
        sign = 1.0 if self.comparison == ">=" else -1.0
        return sign * (self.value - self.threshold)

    def describe(self) -> str:
        verdict = "passed" if self.passed else f"FAILED by {abs(self.margin):.4f}"
        return (
            f"{self.gate}: {self.metric} = {self.value:.4f} (needs {self.comparison} "
            f"{self.threshold:.4f}) {verdict}"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "margin": self.margin}


def _decide(
    gate: str, metric: str, comparison: Literal[">=", "<="], threshold: float, value: float
) -> GateDecision:
    # A metric that could not be computed (NaN) never passes a gate.
    passed = not math.isnan(value) and (
        value >= threshold if comparison == ">=" else value <= threshold
    )
    return GateDecision(gate, metric, comparison, threshold, value, passed)


PREFERRED_FAMILY = "gradient_boosting"
_UTILITY_RATIO = "auroc_ratio_to_trtr"


def gated_family(metrics: Mapping[str, float]) -> str:
    """The classifier family whose TSTR results the gates read.

    Gradient boosting when it was evaluated (as tables are), else the first family the
    metrics report (images are evaluated with families of their own, a CNN first).
    """
    families = [
        key.split(".")[1]
        for key in metrics
        if key.startswith("tstr.") and key.endswith(f".{_UTILITY_RATIO}")
    ]
    if PREFERRED_FAMILY in families or not families:
        return PREFERRED_FAMILY
    return families[0]


def evaluate_gates(
    metrics: dict[str, float], gates: GateConfig, sensitive_columns: list[str]
) -> list[GateDecision]:
    decisions: list[GateDecision] = []
    family = gated_family(metrics)
    per_attribute = (
        (
            "min_demographic_parity_ratio",
            gates.min_demographic_parity_ratio,
            "demographic_parity_ratio",
        ),
        ("min_equalized_odds_ratio", gates.min_equalized_odds_ratio, "equalized_odds_ratio"),
    )
    for gate, threshold, name in per_attribute:
        if threshold is None:
            continue
        for column in sensitive_columns:
            metric = f"tstr.{family}.{column}.{name}"
            decisions.append(_decide(gate, metric, ">=", threshold, metrics.get(metric, math.nan)))
    if gates.min_utility_ratio is not None:
        metric = f"tstr.{family}.{_UTILITY_RATIO}"
        decisions.append(
            _decide(
                "min_utility_ratio",
                metric,
                ">=",
                gates.min_utility_ratio,
                metrics.get(metric, math.nan),
            )
        )
    if gates.max_exact_copy_rate is not None:
        metric = "privacy.exact_copy_rate"
        decisions.append(
            _decide(
                "max_exact_copy_rate",
                metric,
                "<=",
                gates.max_exact_copy_rate,
                metrics.get(metric, math.nan),
            )
        )
    return decisions
