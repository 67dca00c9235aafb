"""The run's Markdown: the evaluation report, the gate verdict and the headline numbers,
for ``report.md``, the Prefect artifacts and the MLflow run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fairdistill.models.constraints import breach_metric, repair_metric, spec_rules
from fairdistill.models.evaluation.fairness import grouping_names
from fairdistill.models.evaluation.protocols import PROTOCOLS
from fairdistill.models.gates import GATE_MEANINGS, GateDecision, gated_family
from fairdistill.models.reporting.content import (
    FIDELITY_SUMMARY,
    PRIVACY_SUMMARY,
    holdout_references,
    reading,
)
from fairdistill.models.reporting.data import ReportData
from fairdistill.models.spec import DatasetSpec

FLIP_METRICS = ("flipped_accuracy", "flip_rate")
PROTOCOL_MEANING = {
    "trtr": "train real, test real (reference)",
    "tstr": "train synthetic, test real",
    "tsts": "train synthetic, test synthetic",
}


def _value(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key, math.nan)
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def headline_metrics(metrics: dict[str, float], spec: DatasetSpec) -> dict[str, float]:
    """The few numbers printed at the end of a run and shown first in the report."""
    first = grouping_names(spec)[0]
    family = gated_family(metrics)
    keys = [
        f"trtr.{family}.auroc",
        f"tstr.{family}.auroc",
        f"trtr.{family}.{first}.demographic_parity_ratio",
        f"tstr.{family}.{first}.demographic_parity_ratio",
        f"tstr.{family}.{first}.equalized_odds_ratio",
        "fidelity.alpha_precision",
        "fidelity.coverage",
        "privacy.exact_copy_rate",
    ]
    return {key: metrics[key] for key in keys if key in metrics}


def _families(metrics: dict[str, float]) -> list[str]:
    return sorted({key.split(".")[1] for key in metrics if key.startswith("trtr.")})


def utility_section(metrics: dict[str, float]) -> list[str]:
    rows = [
        [family, f"{protocol} ({PROTOCOL_MEANING[protocol]})"]
        + [_value(metrics, f"{protocol}.{family}.{name}") for name in ("auroc", "f1", "accuracy")]
        for family in _families(metrics)
        for protocol in PROTOCOLS
    ]
    return [
        "## Utility",
        "",
        *_table(["classifier", "protocol", "AUROC", "F1", "accuracy"], rows),
        "",
    ]


def fairness_section(metrics: dict[str, float], spec: DatasetSpec) -> list[str]:
    names = ("demographic_parity_ratio", "equalized_odds_ratio")
    family = gated_family(metrics)
    rows = []
    for grouping in grouping_names(spec):
        for protocol in PROTOCOLS:
            rows.append(
                [grouping, protocol]
                + [_value(metrics, f"{protocol}.{family}.{grouping}.{n}") for n in names[:2]]
            )
    parity = [
        [
            grouping,
            _value(metrics, f"real.label_parity.{grouping}"),
            _value(metrics, f"label_parity.{grouping}"),
        ]
        for grouping in grouping_names(spec)
    ]
    return [
        f"## Fairness ({family.replace('_', ' ')}; privileged group vs the rest)",
        "",
        *_table(
            ["attribute", "protocol", "demographic parity ratio", "equalized odds ratio"], rows
        ),
        "",
        "Positive-label rate ratio between groups in the data itself:",
        "",
        *_table(["attribute", "real training data", "synthetic data"], parity),
        "",
        f"Positive rate: real {_value(metrics, 'real.positive_rate')}, synthetic "
        f"{_value(metrics, 'synthetic.positive_rate')}.",
        "",
    ]


def reliance_section(metrics: dict[str, float], spec: DatasetSpec) -> list[str]:
    """How much classifiers rely on what the image shows of a sensitive attribute (images)."""
    rows = [
        [family, attribute, protocol]
        + [_value(metrics, f"{protocol}.{family}.{attribute}.{n}") for n in FLIP_METRICS]
        for family in _families(metrics)
        for attribute in spec.sensitive_columns
        for protocol in ("trtr", "tstr")
        if f"{protocol}.{family}.{attribute}.flip_rate" in metrics
    ]
    if not rows:
        return []
    return [
        "## Reliance on the sensitive attribute",
        "",
        "Each real test image re-tinted as the other group: accuracy on those images, and the "
        "share of predictions the flip changes (0: the classifier ignores it).",
        "",
        *_table(["classifier", "attribute", "protocol", "flipped accuracy", "flip rate"], rows),
        "",
    ]


def fidelity_privacy_section(metrics: dict[str, float]) -> list[str]:
    """Each fidelity and privacy figure beside what the real held-out rows score."""
    references = holdout_references(metrics)
    header = ["metric", "synthetic", "real held-out rows", "reading"]

    def rows(prefix: str, names: tuple[str, ...]) -> list[list[str]]:
        table = []
        for name in names:
            value = metrics.get(f"{prefix}.{name}", math.nan)
            reference = references[prefix].get(name, math.nan)
            table.append(
                [name, _number(value), _number(reference), reading(name, value, reference)]
            )
        return table

    return [
        "## Fidelity",
        "",
        "Beside each figure, what real rows no model saw score against the same training "
        "rows: the level an ideal generator reaches.",
        "",
        *_table(header, rows("fidelity", FIDELITY_SUMMARY)),
        "",
        "## Privacy",
        "",
        *_table(header, rows("privacy", PRIVACY_SUMMARY)),
        "",
    ]


def render_evaluation_markdown(
    metrics: dict[str, float], tables: dict[str, Any], spec: DatasetSpec
) -> str:
    del tables  # the plots and per-group detail of the HTML report use them
    lines = [
        f"# Evaluation of synthetic {spec.name}",
        "",
        "Classifiers are scored on the real held-out test set, which no model saw.",
        "",
        *utility_section(metrics),
        *fairness_section(metrics, spec),
        *reliance_section(metrics, spec),
        *fidelity_privacy_section(metrics),
        *constraints_section(metrics, spec),
    ]
    return "\n".join(lines)


def constraints_section(metrics: dict[str, float], spec: DatasetSpec) -> list[str]:
    """The spec's constraints: the share of generated rows each repaired, and how many
    published rows break it (0: repairs guarantee every rule)."""
    rules = spec_rules(spec)
    if not rules:
        return []
    rows = [
        [
            _cell(f"`{rule.text}`"),
            _value(metrics, repair_metric(rule.name)),
            _count(metrics.get(breach_metric(rule), math.nan)),
        ]
        for rule in rules
    ]
    return [
        "## Constraints",
        "",
        "Each rule of the spec's `constraints:`, checked on the input and made to hold on "
        "every generated row by an exact repair (no row is dropped).",
        "",
        *_table(["rule", "share of generated rows repaired", "synthetic rows breaking it"], rows),
        "",
    ]


def render_gate_markdown(decisions: list[GateDecision]) -> str:
    if not decisions:
        return "## Verdict\n\nNo quality gate is configured.\n"
    verdict = "PASSED" if all(d.passed for d in decisions) else "FAILED"
    rows = [
        [
            d.gate,
            d.metric,
            d.needs,
            f"{d.value:.4f}",
            "pass" if d.passed else f"FAIL (by {abs(d.margin):.4f})",
        ]
        for d in decisions
    ]
    meanings = [
        f"- {d.gate}: {GATE_MEANINGS[d.gate]}" for d in decisions if d.gate in GATE_MEANINGS
    ]
    return "\n".join(
        [
            f"## Verdict: quality gates {verdict}",
            "",
            *_table(["gate", "metric", "threshold", "value", "decision"], rows),
            "",
            "Each gate is a key of the run configuration (`gates.<gate>`); a privacy gate "
            "relative to real data needs the real held-out rows' own score plus an allowance.",
            "",
            *dict.fromkeys(meanings),
            "",
        ]
    )


def _count(value: float) -> str:
    return "n/a" if value != value else f"{int(value)}"


def _number(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"


def _cell(text: str) -> str:
    # A pipe or a line break in a column name would break the table row.
    return text.replace("|", "\\|").replace("\n", " ")


def headline_markdown(report: ReportData) -> str:
    """The three headline numbers, each beside its real reference, as a Markdown table."""
    lines = [
        "## Headline",
        "",
        "| | measure | real reference | synthetic | how to read it |",
        "|---|---|---|---|---|",
    ]
    for line in report.headlines:
        lines.append(
            f"| {line.topic} | {_cell(line.metric)} | {_number(line.reference)} "
            f"({line.reference_label}) | {_number(line.synthetic)} ({line.synthetic_label}) "
            f"| {_cell(line.meaning)} |"
        )
    lines += ["", "Figures and per-group detail: the HTML report (`report.html`).", ""]
    return "\n".join(lines)
