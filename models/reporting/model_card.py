"""The model card published beside every dataset, written from the run's manifest."""

from __future__ import annotations

import math
from typing import Any

from fairdistill.models.gates import gated_family, needs_text

CRITERION_WHY = {
    "demographic_parity": (
        "Demographic parity asks that the favourable outcome be predicted at the same rate "
        "for every group, whatever the groups' base rates. The latent is made independent "
        "of the sensitive attributes and the label is decoded from it alone."
    ),
    "equalized_odds": (
        "Equalized odds asks that, among people with the same true outcome, every group be "
        "predicted favourably at the same rate. The latent is made independent of the "
        "sensitive attributes within each label class."
    ),
}


def _number(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key)
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _results(manifest: dict[str, Any]) -> list[str]:
    metrics = manifest["metrics"]
    family = gated_family(metrics)
    rows = [(f"AUROC ({family.replace('_', ' ')})", f"trtr.{family}.auroc", f"tstr.{family}.auroc")]
    for attribute in manifest["spec"]["sensitive"]:
        column = attribute["column"]
        for label, name in (
            ("demographic parity ratio", "demographic_parity_ratio"),
            ("equalized odds ratio", "equalized_odds_ratio"),
        ):
            rows.append(
                (
                    f"{label}, {column}",
                    f"trtr.{family}.{column}.{name}",
                    f"tstr.{family}.{column}.{name}",
                )
            )
    lines = ["| measure | trained on real data | trained on synthetic data |", "|---|---|---|"]
    lines += [
        f"| {name} | {_number(metrics, real)} | {_number(metrics, synthetic)} |"
        for name, real, synthetic in rows
    ]
    lines += [
        "",
        f"Fidelity: α-precision {_number(metrics, 'fidelity.alpha_precision')}, β-recall "
        f"{_number(metrics, 'fidelity.beta_recall')}, coverage "
        f"{_number(metrics, 'fidelity.coverage')}. Privacy: exact copies of training rows "
        f"{_number(metrics, 'privacy.exact_copy_rate')} (real holdout: "
        f"{_number(metrics, 'privacy.holdout_exact_copy_rate')}).",
    ]
    return lines


def _gates(manifest: dict[str, Any]) -> list[str]:
    gates = manifest.get("gates", [])
    if not gates:
        return ["No quality gate was configured."]
    return [
        f"- {gate['gate']}: {gate['metric']} = {gate['value']:.4f} (needs {_needs(gate)}) — "
        f"{'passed' if gate['passed'] else 'failed'}"
        for gate in gates
    ]


def _needs(gate: dict[str, Any]) -> str:
    return needs_text(
        gate["comparison"],
        gate["threshold"],
        gate.get("baseline_metric"),
        gate.get("baseline"),
        gate.get("allowance"),
    )


def render_model_card(manifest: dict[str, Any]) -> str:
    spec, config = manifest["spec"], manifest["config"]
    criterion = config["teacher"]["criterion"]
    sensitive = ", ".join(
        f"{a['column']} (privileged: {', '.join(a['privileged'])})" for a in spec["sensitive"]
    )
    models = manifest.get("models", {})
    source, split = manifest["input"], manifest["split"]
    return "\n".join(
        [
            f"# Model card: fairdistill generator for {spec['name']}",
            "",
            "## Intended use",
            f"Generate synthetic rows shaped like `{spec['name']}` for analysis, model development "
            "and sharing where the real rows cannot be used, with the selected fairness criterion "
            "built into the data. Out of scope: decisions about real individuals; re-identifying "
            "anyone; treating synthetic rows as records of real people; any use of the data for "
            "a fairness criterion other than the one chosen without measuring it again.",
            "",
            "## Data",
            f"Input `{source['path']}` (sha256 `{source['sha256']}`, {source['rows']:,} rows), "
            f"split {split['train_rows']:,} train / {split['test_rows']:,} held-out test. "
            f"Target `{spec['target']['column']}` (favourable: `{spec['target']['positive']}`). "
            f"Sensitive attributes: {sensitive}.",
            "",
            "## Fairness criterion",
            f"`{criterion}`, fairness weight β = {config['teacher']['beta']}. "
            + CRITERION_WHY.get(criterion, ""),
            "",
            "## Results: real vs synthetic (scored on the real held-out test set)",
            *_results(manifest),
            "",
            "## Models",
            *[
                f"- {name}: {info['parameters']:,} parameters, "
                f"weights sha256 `{info['weights_sha256']}`"
                for name, info in models.items()
            ],
            "",
            "## Known limitations",
            "- Demographic parity and equalized odds cannot both hold when base rates differ "
            "between groups; the other criterion is reported, not enforced.",
            "- Features that proxy a sensitive attribute can carry bias into models trained on "
            "the data; the report shows what a classifier trained on it does on real data.",
            "- Fidelity and privacy figures are estimates on samples (see the report); "
            "synthetic data is not anonymous by construction.",
            "",
            "## Quality gates",
            *_gates(manifest),
            "",
        ]
    )
