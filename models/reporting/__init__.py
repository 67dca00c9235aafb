"""The run report: what it shows (:mod:`data`, :mod:`content`), its figures (:mod:`plots`)
and its HTML and Markdown forms (:mod:`html`, :mod:`markdown`). Plain values in, text and
PNG bytes out: no tracking or orchestration here."""

from fairdistill.models.reporting.data import REPORT_SCHEMA_VERSION, ReportData
from fairdistill.models.reporting.html import build_figures, render_html
from fairdistill.models.reporting.markdown import headline_markdown

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ReportData",
    "build_figures",
    "headline_markdown",
    "render_html",
]
