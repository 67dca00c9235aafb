"""The run report as one self-contained HTML page: verdict first, then the evidence.

Figures are embedded as base64 PNG and the style sheet is inline, so the file opens offline,
from an e-mail attachment or an artifact store, and shows the same thing years later. No
script runs in it. Every string that comes from data or configuration is escaped.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from fairdistill.models.reporting import plots
from fairdistill.models.reporting.content import reading
from fairdistill.models.reporting.data import GroupFairness, ModelSummary, ReportData

PROTOCOL_LABELS = {
    "trtr": "TRTR: train real, test real (reference)",
    "tstr": "TSTR: train synthetic, test real",
    "tsts": "TSTS: train synthetic, test synthetic",
}
FIDELITY_TEXT = {
    "alpha_precision": "synthetic rows lie where real rows lie (1 = as real data)",
    "beta_recall": "real rows are covered by synthetic ones (fresh real data: about 0.85-0.9)",
    "authenticity": "synthetic rows are not near-copies (about 0.5 for fresh real data)",
    "density": "synthetic rows per real neighbourhood (about 1 for fresh real data)",
    "coverage": "real neighbourhoods holding a synthetic row (1 = all)",
    "mean_tvd": "mean total variation distance of categorical columns (0 = identical)",
    "mean_ks": "mean Kolmogorov-Smirnov statistic of numeric columns (0 = identical)",
    "column_shapes": "mean of 1 - TVD (KS for numeric columns) over the columns (1 = same)",
    "correlation_difference": "column-pair trends: mean absolute difference of pairwise "
    "associations (0 = same)",
    "discriminator_auc": "a classifier telling these rows from real training rows (0.5 = "
    "it cannot)",
}
PRIVACY_TEXT = {
    "exact_copy_rate": "synthetic rows identical to a real training row",
    "dcr.synthetic_median": "median distance from a synthetic row to its closest training row",
    "dcr.median_ratio": "synthetic over holdout median (below 1: closer than fresh data)",
    "dcr.synthetic_share_below_holdout_p5": "synthetic rows closer than 95% of unseen real "
    "rows (about 0.05 when nothing is copied)",
    "nndr_median": "closest over second-closest training-row distance (near 0: sits on one record)",
}
RATIO_GATES = {
    "demographic_parity_ratio": "min_demographic_parity_ratio",
    "equalized_odds_ratio": "min_equalized_odds_ratio",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2328; margin: 0 auto; padding: 0 24px 48px; max-width: 1180px; }
h1 { font-size: 26px; margin: 6px 0 10px; } h2 { margin-top: 36px;
  border-bottom: 2px solid #d0d7de; padding-bottom: 4px; } h3 { margin-bottom: 6px; }
.verdict { margin-top: 16px; padding: 14px 20px 18px; border-radius: 8px; border: 3px solid; }
.verdict.passed { background: #eaf6ec; border-color: #2e7d32; }
.verdict.failed { background: #fdecea; border-color: #c62828; }
.verdict .status { display: inline-block; padding: 2px 12px; border-radius: 4px;
  color: #fff; font-weight: 700; letter-spacing: .04em; }
.passed .status { background: #2e7d32; } .failed .status { background: #c62828; }
.kicker { color: #57606a; margin: 0; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict table { background: #fff; } .headline .big { font-size: 20px; font-weight: 700; }
.headline small { color: #57606a; white-space: nowrap; }
td.fail { color: #c62828; font-weight: 700; } td.pass { color: #2e7d32; font-weight: 700; }
figure { margin: 10px 0 18px; } figure img { max-width: 100%; height: auto;
  border: 1px solid #e1e4e8; } figcaption { color: #57606a; font-size: 13px; }
.note { color: #57606a; font-size: 14px; max-width: 900px; }
nav a { margin-right: 14px; } code, pre { font-size: 12.5px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; max-height: 420px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; }
dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
"""


def _text(value: Any) -> str:
    return escape(str(value), quote=True)


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _cell(value: float | None, digits: int = 3) -> str:
    return f'<td class="num">{_number(value, digits)}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """``rows`` hold finished cells (``<td>…</td>``); ``header`` is plain text."""
    head = "".join(f"<th>{_text(name)}</th>" for name in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: Any, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}>{_text(text)}</td>"


def _figure(figures: Mapping[str, bytes], name: str, caption: str) -> str:
    if name not in figures:
        return ""
    encoded = base64.b64encode(figures[name]).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{_text(caption)}">'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
    )


def figure_name(kind: str, index: int | None = None, label: str = "") -> str:
    """A safe file name for a figure, whatever characters a column name holds."""
    parts = [kind] + ([str(index)] if index is not None else [])
    if label:
        parts.append(_UNSAFE_NAME.sub("_", label)[:40])
    return "_".join(parts)


def _gate_thresholds(report: ReportData, attribute: str) -> dict[str, float]:
    thresholds = {}
    for ratio, gate_name in RATIO_GATES.items():
        metric = f"tstr.{report.fairness_classifier}.{attribute}.{ratio}"
        for gate in report.gates:
            if gate.gate == gate_name and gate.metric == metric:
                thresholds[ratio] = gate.threshold
    return thresholds


def build_figures(report: ReportData) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, keyed by a file-safe name."""
    figures = {}
    for index, section in enumerate(report.fairness, start=1):
        figures[figure_name("fairness", index, section.attribute)] = plots.fairness_chart(
            section.attribute,
            section.groups,
            section.label_rate,
            section.prediction_rate,
            section.ratios,
            _gate_thresholds(report, section.attribute),
        )
    figures["utility"] = plots.utility_chart(report.utility)
    if report.marginals:
        figures["marginals"] = plots.marginals_chart(
            [
                {
                    "title": f"{m.column} ({m.distance_name} {_number(m.distance, 2)})",
                    "kind": m.kind,
                    "labels": m.labels,
                    "edges": m.edges,
                    "real": m.real,
                    "synthetic": m.synthetic,
                }
                for m in report.marginals
            ]
        )
    association = report.association
    if association.columns:
        figures["association_difference"] = plots.association_difference_chart(
            association.columns, association.real, association.synthetic
        )
    distances = report.distances
    figures["distance_to_closest_record"] = plots.distance_chart(
        distances.edges, distances.synthetic, distances.holdout
    )
    for model in report.models:
        if model.history:
            figures[figure_name("training", None, model.name)] = plots.training_curves_chart(
                model.history, f"{model.name}: training metrics per epoch"
            )
    panels = _latent_panels(report.models)
    if panels:
        figures["latent_space"] = plots.latent_chart(panels)
    for grid in report.samples:
        figures[figure_name("samples", None, grid.name)] = base64.b64decode(grid.png_base64)
    return figures


def _latent_panels(models: Sequence[ModelSummary]) -> list[dict[str, Any]]:
    attributes = list(dict.fromkeys(name for m in models if m.latents for name in m.latents.groups))
    panels = []
    for attribute in attributes:
        for model in models:
            if model.latents is None or attribute not in model.latents.groups:
                continue
            share = model.latents.explained_variance
            probe = model.probe_auroc.get(attribute)
            panels.append(
                {
                    "title": f"{model.name}: coloured by {attribute} "
                    f"(probe AUROC {_number(probe, 2)})",
                    "points": model.latents.points,
                    "labels": model.latents.groups[attribute],
                    "x_label": f"principal component 1 ({_number(share[0] * 100, 0)}% of variance)",
                    "y_label": f"principal component 2 ({_number(share[1] * 100, 0)}% of variance)",
                }
            )
    return panels


def render_html(report: ReportData, figures: Mapping[str, bytes] | None = None) -> str:
    """The whole report as one HTML document; draws the figures unless they are given."""
    figures = build_figures(report) if figures is None else figures
    title = f"fairdistill run {report.run_name}"
    body = "".join(
        [
            _verdict(report),
            _contents(),
            _fairness(report, figures),
            _utility(report, figures),
            _fidelity(report, figures),
            _privacy(report, figures),
            _models(report, figures),
            _provenance(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _verdict(report: ReportData) -> str:
    failed = [gate for gate in report.gates if not gate.passed]
    if failed:
        state, status, outcome = "failed", "FAILED", "quality gates failed: nothing is published"
    elif report.gates:
        state, status, outcome = (
            "passed",
            "PASSED",
            "quality gates passed: the dataset is published",
        )
    else:
        state, status, outcome = "passed", "NO GATES", "no quality gate is configured: published"
    where = report.provenance.published_folder
    published = f"<p>Published to <code>{_text(where)}</code>.</p>" if where and not failed else ""
    misses = "".join(
        f"<li>{_text(gate.gate)}: <code>{_text(gate.metric)}</code> = {_number(gate.value, 4)}, "
        f"needs {_text(gate.needs)} (missed by {_number(abs(gate.margin), 4)}): "
        f"{_text(gate.meaning)}</li>"
        for gate in failed
    )
    return (
        f'<section id="verdict" class="verdict {state}">'
        f'<p class="kicker">fairdistill run report · dataset {_text(report.dataset)} · '
        f"{_text(report.created_at)}</p>"
        f'<h1><span class="status">{status}</span> {_text(report.run_name)}</h1>'
        f"<p><strong>{_text(outcome.capitalize())}.</strong></p>"
        f"{f'<ul>{misses}</ul>' if misses else ''}{published}"
        f"{_headline_table(report)}{_gate_table(report)}</section>"
    )


def _headline_table(report: ReportData) -> str:
    rows = [
        [
            _td(line.topic),
            _td(line.metric),
            _big_number(line.reference, line.reference_label),
            _big_number(line.synthetic, line.synthetic_label),
            _td(line.meaning),
        ]
        for line in report.headlines
    ]
    header = ["", "measure", "real reference", "synthetic", "how to read it"]
    return _table(header, rows, "headline")


def _big_number(value: float, label: str) -> str:
    return (
        f'<td class="num"><span class="big">{_number(value)}</span>'
        f"<br><small>{_text(label)}</small></td>"
    )


def _gate_table(report: ReportData) -> str:
    if not report.gates:
        return '<p class="note">No quality gate is configured for this run.</p>'
    rows = [
        [
            _td(gate.gate),
            _td(gate.metric),
            _td(gate.needs),
            _cell(gate.value, 4),
            _td("pass", "pass")
            if gate.passed
            else _td(f"FAIL (by {_number(abs(gate.margin), 4)})", "fail"),
            _td(gate.meaning),
        ]
        for gate in report.gates
    ]
    return _table(["gate", "metric", "needs", "value", "decision", "what it checks"], rows)


def _contents() -> str:
    links = {
        "fairness": "Fairness",
        "utility": "Utility",
        "fidelity": "Fidelity",
        "privacy": "Privacy",
        "models": "Models",
        "provenance": "Provenance",
    }
    return "<nav>" + "".join(f'<a href="#{k}">{v}</a>' for k, v in links.items()) + "</nav>"


def _fairness(report: ReportData, figures: Mapping[str, bytes]) -> str:
    classifier = report.fairness_classifier.replace("_", " ")
    parts = [
        '<section id="fairness"><h2>Fairness</h2>',
        '<p class="note">Each sensitive attribute splits the rows into its privileged group '
        "(the spec's privileged values) and the rest; with several attributes their "
        f"intersection is shown too. A {_text(classifier)} classifier is trained on real data "
        "(TRTR, the reference) and on synthetic data (TSTR: tested on the real held-out rows; "
        "TSTS: tested on held-out synthetic rows). A ratio of 1 means every group gets "
        "positive predictions (demographic parity) or errors (equalized odds) at the same "
        "rate.</p>",
    ]
    for index, section in enumerate(report.fairness, start=1):
        parts.append(_group_section(section, figures, index))
    parts.append("</section>")
    return "".join(parts)


def _group_section(section: GroupFairness, figures: Mapping[str, bytes], index: int) -> str:
    rows = [
        [
            _td(group),
            f'<td class="num">{section.rows["real"].get(group, 0):,}</td>',
            _cell(section.label_rate["real"].get(group)),
            f'<td class="num">{section.rows["synthetic"].get(group, 0):,}</td>',
            _cell(section.label_rate["synthetic"].get(group)),
            *(_cell(section.prediction_rate.get(p, {}).get(group)) for p in PROTOCOL_LABELS),
        ]
        for group in section.groups
    ]
    header = [
        "group",
        "real rows",
        "positive label, real",
        "synthetic rows",
        "positive label, synthetic",
        "predicted positive, TRTR",
        "TSTR",
        "TSTS",
    ]
    ratios = [
        [
            _td(label),
            _cell(section.ratios.get(protocol, {}).get("demographic_parity_ratio")),
            _cell(section.ratios.get(protocol, {}).get("equalized_odds_ratio")),
        ]
        for protocol, label in PROTOCOL_LABELS.items()
    ]
    caption = (
        f"{section.attribute}: positive rate per group in the real and synthetic data and in "
        "the predictions of the classifier trained on synthetic data (left); parity ratios "
        "per protocol (right)."
    )
    return (
        f"<h3>{_text(section.attribute)}</h3>"
        f'<p class="note">{_text(section.definition)}</p>'
        + _table(header, rows)
        + _table(["protocol", "demographic parity ratio", "equalized odds ratio"], ratios)
        + _figure(figures, figure_name("fairness", index, section.attribute), caption)
    )


def _utility(report: ReportData, figures: Mapping[str, bytes]) -> str:
    rows = []
    for family, protocols in report.utility.items():
        reference = protocols.get("trtr", {}).get("auroc", math.nan)
        for protocol, label in PROTOCOL_LABELS.items():
            scores = protocols.get(protocol, {})
            auroc = scores.get("auroc", math.nan)
            ratio = auroc / reference if reference > 0 else math.nan
            rows.append(
                [
                    _td(family.replace("_", " ")),
                    _td(label),
                    _cell(auroc),
                    _cell(scores.get("f1")),
                    _cell(scores.get("accuracy")),
                    _cell(ratio),
                ]
            )
    header = ["classifier", "protocol", "AUROC", "F1", "accuracy", "AUROC / TRTR AUROC"]
    return (
        '<section id="utility"><h2>Utility</h2>'
        '<p class="note">Can the synthetic data replace the real data for training? '
        "Each classifier family is trained on real and on synthetic rows and scored on the "
        "real held-out rows that no model saw.</p>"
        + _table(header, rows)
        + _figure(figures, "utility", "AUROC per classifier and protocol.")
        + "</section>"
    )


REFERENCE_HEADER = ["metric", "synthetic", "real held-out rows", "reading", "meaning"]


def _metric_rows(
    values: Mapping[str, float], references: Mapping[str, float], texts: Mapping[str, str]
) -> list[list[str]]:
    """One row a figure: its value, the holdout's, how the two compare, what it measures."""
    rows = []
    for name in values:
        value, reference = _float_or_nan(values.get(name)), _float_or_nan(references.get(name))
        rows.append(
            [
                _td(_metric_label(name)),
                _cell(value),
                _cell(reference),
                _td(reading(name, value, reference)),
                _td(texts.get(name, "")),
            ]
        )
    return rows


def _float_or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _metric_label(name: str) -> str:
    return (
        name.replace("dcr.", "DCR ").replace("_", " ").replace(" tvd", " TVD").replace(" ks", " KS")
    )


def _fidelity(report: ReportData, figures: Mapping[str, bytes]) -> str:
    association = report.association
    return (
        '<section id="fidelity"><h2>Fidelity</h2>'
        '<p class="note">How closely the synthetic rows follow the real training rows, '
        "column by column and jointly, beside what real rows no model saw (the holdout) "
        "score against the same training rows: the level an ideal generator reaches.</p>"
        + _table(
            REFERENCE_HEADER,
            _metric_rows(report.fidelity, report.fidelity_reference, FIDELITY_TEXT),
        )
        + f'<p class="note">{_text(report.marginal_selection)}</p>'
        + _figure(figures, "marginals", "Real (blue, filled) and synthetic (orange) shares.")
        + '<p class="note">Pairwise association of the columns (Cramér\'s V, correlation '
        "ratio or Pearson's r by column types), synthetic minus real; mean absolute "
        f"difference {_number(association.mean_absolute_difference)}. White cells are "
        "relations the synthetic data keeps.</p>"
        + _figure(figures, "association_difference", "Association difference heatmap.")
        + "</section>"
    )


def _privacy(report: ReportData, figures: Mapping[str, bytes]) -> str:
    return (
        '<section id="privacy"><h2>Privacy</h2>'
        '<p class="note">Synthetic rows should sit no closer to the training rows than real '
        "rows the models never saw (the holdout); a synthetic curve shifted left of the grey "
        "one means memorised rows.</p>"
        + _table(
            REFERENCE_HEADER,
            _metric_rows(report.privacy, report.privacy_reference, PRIVACY_TEXT),
        )
        + _figure(
            figures,
            "distance_to_closest_record",
            "Distance to the closest training row, in the evaluation embedding.",
        )
        + "</section>"
    )


def _models(report: ReportData, figures: Mapping[str, bytes]) -> str:
    teacher_encoder = next(
        (m.encoder_parameters for m in report.models if m.name == "teacher"), None
    )
    size_rows = [
        [
            _td(model.name),
            _td(model.role),
            f'<td class="num">{model.parameters:,}</td>',
            f'<td class="num">{model.encoder_parameters:,}</td>',
            _cell(model.encoder_parameters / teacher_encoder if teacher_encoder else None, 2),
            _td(model.mlflow_run_id or "n/a"),
        ]
        for model in report.models
    ]
    attributes = list(dict.fromkeys(name for m in report.models for name in m.probe_auroc))
    probe_rows = [
        [_td(model.name), *(_cell(model.probe_auroc.get(name)) for name in attributes)]
        for model in report.models
    ]
    parts = [
        '<section id="models"><h2>Models</h2>',
        _table(
            [
                "model",
                "role",
                "parameters",
                "encoder parameters",
                "encoder size / teacher's",
                "MLflow run",
            ],
            size_rows,
        ),
        '<p class="note">How well a probe classifier reads each sensitive attribute from the '
        "latent codes (AUROC; 0.5 means the latent tells nothing about it).</p>",
        _table(["model", *(f"probe AUROC, {name}" for name in attributes)], probe_rows),
    ]
    for model in report.models:
        parts.append(
            _figure(
                figures,
                figure_name("training", None, model.name),
                f"{model.name}: per-epoch training metrics.",
            )
        )
    parts.append(
        _figure(
            figures,
            "latent_space",
            "A sample of latent codes on their first two principal components, coloured by "
            "sensitive group: overlapping colours mean the latent does not separate the "
            "groups.",
        )
    )
    if report.samples:
        parts.append("<h3>Sample images</h3>")
        parts.extend(
            _figure(figures, figure_name("samples", None, grid.name), grid.caption)
            for grid in report.samples
        )
    parts.append("</section>")
    return "".join(parts)


def _provenance(report: ReportData) -> str:
    p = report.provenance
    facts = {
        "input file": p.input_path,
        "input sha256": p.input_sha256,
        "input rows": f"{p.input_rows:,} (train {p.train_rows:,}, test {p.test_rows:,})",
        "synthetic rows": f"{p.output_rows:,}",
        "synthetic data sha256": p.output_sha256,
        "published folder": p.published_folder or "not published",
        "code version": ", ".join(f"{k} {v}" for k, v in p.code_version.items()),
        "MLflow tracking URI": p.tracking_uri,
        "MLflow experiment id": p.experiment_id,
        "MLflow run id": p.mlflow_run_id,
        **{f"MLflow run, {stage}": run for stage, run in p.stage_runs.items()},
        "stages reused from an earlier run": ", ".join(p.reused_stages) or "none",
        "Prefect flow run id": p.flow_run_id or "n/a",
    }
    items = "".join(f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in facts.items())
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        f"<dl>{items}</dl>"
        f"{_mlflow_pointer(p.tracking_uri, p.experiment_id, p.mlflow_run_id)}"
        f"<details><summary>Dataset spec</summary><pre>{_json(p.spec)}</pre></details>"
        f"<details><summary>Run configuration</summary><pre>{_json(p.config)}</pre></details>"
        "</section>"
    )


def _mlflow_pointer(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        url = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f'<p>Open the run in MLflow: <a href="{_text(url)}">{_text(url)}</a></p>'
    command = f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1"
    return (
        f"<p>Open the run in MLflow: <code>{_text(command)}</code>, then experiment "
        f"{_text(experiment_id)}, run {_text(run_id)}.</p>"
    )


def _json(payload: Any) -> str:
    return _text(json.dumps(payload, indent=2, sort_keys=True, default=str))
