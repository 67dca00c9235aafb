"""The report's headline numbers as Markdown, for the Prefect artifact and ``report.md``."""

from __future__ import annotations

from fairdistill.models.reporting.data import ReportData


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
