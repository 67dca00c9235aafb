"""The few lines printed when a run ends: where the data went, what it scored, what it cost.

Two small tables (the headline measures real vs synthetic, and each stage's time) and the
places to look next. Plain text when the output is not a terminal, so a scheduler's log
keeps it readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from fairdistill.flows.regenerate import RunSummary, StageTiming
    from fairdistill.tasks.services.registry import RegisteredVersion

_MEASURE_NAMES = {
    "auroc": "AUROC",
    "demographic_parity_ratio": "demographic parity ratio",
    "equalized_odds_ratio": "equalized odds ratio",
    "alpha_precision": "α-precision",
    "coverage": "coverage",
    "exact_copy_rate": "exact copies of training rows",
}


def measure_label(key: str) -> str:
    """``tstr.gradient_boosting.sex.demographic_parity_ratio`` → readable words."""
    parts = key.split(".")
    name = _MEASURE_NAMES.get(parts[-1], parts[-1].replace("_", " "))
    if parts[0] in ("tstr", "trtr"):
        qualifiers = [part.replace("_", " ") for part in parts[1:-1]]
        return f"{name} ({', '.join(qualifiers)})"
    return name


def headline_rows(headline: dict[str, float]) -> list[tuple[str, str, str]]:
    """(measure, real, synthetic): a TSTR figure beside its TRTR twin; others synthetic only."""
    rows = []
    for key, value in headline.items():
        if key.startswith("trtr."):
            continue
        twin = "trtr." + key.removeprefix("tstr.") if key.startswith("tstr.") else None
        real = f"{headline[twin]:.3f}" if twin in headline else "–"
        rows.append((measure_label(key), real, f"{value:.3f}"))
    return rows


def headline_table(headline: dict[str, float]) -> Table:
    table = Table(title="Real vs synthetic", title_justify="left")
    table.add_column("measure")
    table.add_column("real (TRTR)", justify="right")
    table.add_column("synthetic (TSTR)", justify="right")
    for row in headline_rows(headline):
        table.add_row(*row)
    return table


def stage_note(timing: StageTiming) -> str:
    """ "reused", "resumed from epoch N" (an earlier attempt's checkpoint), or nothing."""
    if timing.reused:
        return "reused"
    if timing.resumed_from_epoch is not None:
        return f"resumed from epoch {timing.resumed_from_epoch}"
    return ""


def stage_table(summary: RunSummary) -> Table:
    table = Table(title="Stages", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    for timing in summary.stages:
        table.add_row(timing.stage, f"{timing.seconds:.1f}", stage_note(timing))
    table.add_row("total", f"{sum(timing.seconds for timing in summary.stages):.1f}", "")
    return table


def where_to_look(summary: RunSummary, tracking_uri: str) -> list[str]:
    published = summary.published
    registered = [registry_line(published.registry)] if published.registry else []
    return [
        f"  synthetic data : {published.data}",
        f"  manifest       : {published.manifest}",
        f"  report         : {published.report_html}",
        f"  report (text)  : {published.report}",
        f"  MLflow run     : {summary.mlflow_run_id}",
        *registered,
        "Open the MLflow UI with:",
        f"  mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1",
    ]


def registry_line(registry: RegisteredVersion) -> str:
    reused = ", reused: the generator is unchanged" if registry.reused else ""
    return (
        f"  registered     : {registry.model} version {registry.version} "
        f"(alias {registry.alias}{reused})"
    )


def print_run_summary(summary: RunSummary, tracking_uri: str, console: Console) -> None:
    console.print()
    console.print(
        f"fairdistill run {summary.run_name} published {summary.published.rows:,} synthetic rows.",
        highlight=False,
        soft_wrap=True,
    )
    console.print(headline_table(summary.headline))
    console.print(stage_table(summary))
    for line in where_to_look(summary, tracking_uri):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
