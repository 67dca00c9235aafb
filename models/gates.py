"""Quality gates: what a synthetic dataset must reach before it is published.

The privacy gates compare the synthetic rows with what real data scores on the same test:
real rows the generator never saw (the held-out test split) also repeat training rows, often,
when a table has few distinct rows (four yes/no columns hold at most 16), and also lie
close to them. A synthetic dataset is refused for copying more than real data does, not for
being as private as it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Real rows drawn like the holdout put 5 % of themselves below the holdout's 5th percentile
# of distances. A generator that has learnt the distribution, not the rows, puts a little
# more there (it samples dense regions more than the tails: 0.01-0.08 on Adult, German, the
# coloured digits and a 0/1-target table); one that memorises puts its copies there. Three
# times the real rate refuses a generator that memorises more than about a tenth of its rows.
DEFAULT_DCR_SHARE = 0.15


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
    max_exact_copy_excess: float | None = Field(
        default=0.05,
        ge=0,
        le=1,
        description="How much the share of synthetic rows identical to a real training row "
        "(privacy.exact_copy_rate) may exceed the share of real held-out rows identical to one "
        "(privacy.holdout_exact_copy_rate): real data's own repeats are the baseline.",
    )
    max_dcr_share_below_holdout_p5: float | None = Field(
        default=DEFAULT_DCR_SHARE,
        ge=0,
        le=1,
        description="Maximum share of synthetic rows closer to their nearest real training "
        "row than 95 % of real held-out rows are to theirs "
        "(privacy.dcr.synthetic_share_below_holdout_p5). Rows drawn like the holdout give "
        "about 0.05, a generator that memorises rows far more.",
    )
    max_exact_copy_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="An absolute ceiling on the share of synthetic rows identical to a real "
        "training row, whatever real held-out rows score; off by default (a table with few "
        "distinct rows repeats itself: see max_exact_copy_excess).",
    )


@dataclass(frozen=True)
class GateDecision:
    """One gate's verdict. A gate relative to real data reads its threshold as
    ``baseline`` (what real held-out rows score, ``baseline_metric``) plus ``allowance``."""

    gate: str
    metric: str
    comparison: Literal[">=", "<="]
    threshold: float
    value: float
    passed: bool
    baseline_metric: str | None = None
    baseline: float | None = None
    allowance: float | None = None

    @property
    def key(self) -> str:
        """The run setting that sets this gate: ``gates.max_exact_copy_excess``."""
        return f"gates.{self.gate}"

    @property
    def margin(self) -> float:
        """How far the value is on the right side of the threshold (negative: missed by)."""
        sign = 1.0 if self.comparison == ">=" else -1.0
        return sign * (self.value - self.threshold)

    @property
    def needs(self) -> str:
        """``<= 0.2350 (real holdout 0.1850 + 0.0500)``, or ``>= 0.8000``."""
        return needs_text(
            self.comparison, self.threshold, self.baseline_metric, self.baseline, self.allowance
        )

    def describe(self) -> str:
        verdict = "passed" if self.passed else f"FAILED by {abs(self.margin):.4f}"
        return f"{self.key}: {self.metric} = {self.value:.4f} (needs {self.needs}) {verdict}"

    def passing_setting(self) -> float | None:
        """The setting of this gate the value would have passed (2 decimals), None if none."""
        if math.isnan(self.value) or (self.baseline is not None and math.isnan(self.baseline)):
            return None
        if self.comparison == ">=":
            return math.floor(self.value * 100) / 100
        needed = self.value - (self.baseline or 0.0)
        return min(1.0, math.ceil(needed * 100 - 1e-9) / 100)

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "key": self.key,
            "margin": self.margin,
            "meaning": GATE_MEANINGS.get(self.gate, ""),
        }


def needs_text(
    comparison: str,
    threshold: float,
    baseline_metric: str | None = None,
    baseline: float | None = None,
    allowance: float | None = None,
) -> str:
    text = f"{comparison} {threshold:.4f}"
    if baseline_metric is not None and baseline is not None and allowance is not None:
        text += f" = real holdout {baseline:.4f} + {allowance:.4f}"
    return text


# What each gate checks, for the report, the model card and the manifest.
GATE_MEANINGS = {
    "min_demographic_parity_ratio": "a classifier trained on the synthetic data and scored on "
    "real held-out rows grants the favourable label at similar rates across groups",
    "min_equalized_odds_ratio": "that classifier's error rates are similar across groups",
    "min_utility_ratio": "that classifier ranks real held-out rows nearly as well as one "
    "trained on the real training rows",
    "max_exact_copy_excess": "synthetic rows repeat a real training row hardly more often "
    "than real held-out rows do (a table with few distinct rows repeats itself)",
    "max_dcr_share_below_holdout_p5": "few synthetic rows lie closer to a real training row "
    "than real held-out rows do (5 % of those held-out rows lie that close)",
    "max_exact_copy_rate": "few synthetic rows repeat a real training row, whatever real rows do",
}


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
    decisions += _privacy_decisions(metrics, gates)
    return decisions


COPY_RATE = "privacy.exact_copy_rate"
HOLDOUT_COPY_RATE = "privacy.holdout_exact_copy_rate"
DCR_SHARE = "privacy.dcr.synthetic_share_below_holdout_p5"


def _privacy_decisions(metrics: Mapping[str, float], gates: GateConfig) -> list[GateDecision]:
    decisions = []
    copies = metrics.get(COPY_RATE, math.nan)
    if gates.max_exact_copy_excess is not None:
        baseline = metrics.get(HOLDOUT_COPY_RATE, math.nan)
        allowance = gates.max_exact_copy_excess
        decision = _decide("max_exact_copy_excess", COPY_RATE, "<=", baseline + allowance, copies)
        decisions.append(
            replace(
                decision, baseline_metric=HOLDOUT_COPY_RATE, baseline=baseline, allowance=allowance
            )
        )
    if gates.max_dcr_share_below_holdout_p5 is not None:
        share = metrics.get(DCR_SHARE, math.nan)
        threshold = gates.max_dcr_share_below_holdout_p5
        decisions.append(
            _decide("max_dcr_share_below_holdout_p5", DCR_SHARE, "<=", threshold, share)
        )
    if gates.max_exact_copy_rate is not None:
        decisions.append(
            _decide("max_exact_copy_rate", COPY_RATE, "<=", gates.max_exact_copy_rate, copies)
        )
    return decisions


def gate_miss_hint(failed: list[GateDecision]) -> str:
    """What to do about missed gates: the one line of YAML (and the option) that moves them."""
    settings = {d.key: d.passing_setting() for d in failed}
    pairs = ", ".join(f"{key.removeprefix('gates.')}: {_yaml(v)}" for key, v in settings.items())
    options = " ".join(f"--set {key}={_yaml(v)}" for key, v in settings.items())
    return (
        "improve the data or the training (--beta, --epochs), or, to accept this result, put "
        f"`gates: {{{pairs}}}` in the YAML file given with --config or pass {options} "
        "(null switches a gate off)"
    )


def _yaml(value: float | None) -> str:
    return "null" if value is None else f"{value:g}"
