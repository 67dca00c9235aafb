"""The Markdown headline: one intact table row per headline, missing numbers shown as n/a."""

from __future__ import annotations

import re
from dataclasses import replace

from fairdistill.models.reporting.data import ReportData
from fairdistill.models.reporting.markdown import headline_markdown


def test_the_markdown_headline_keeps_its_table_intact(report: ReportData) -> None:
    text = headline_markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| Fairness")]
    assert len(rows) == 1
    assert len(re.findall(r"(?<!\\)\|", rows[0])) == 6
    assert "0.610 (real)" in rows[0] and "0.930 (syn)" in rows[0]


def test_a_missing_number_reads_n_a_and_a_line_break_stays_in_its_cell(report: ReportData) -> None:
    broken = replace(report.headlines[2], metric="alpha\nprecision")
    text = headline_markdown(replace(report, headlines=[broken]))
    (row,) = [line for line in text.splitlines() if line.startswith("| Fidelity")]
    assert "| alpha precision |" in row
    assert "n/a (syn)" in row and "1.000 (ideal)" in row
