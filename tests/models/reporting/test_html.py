"""The HTML report: verdict first, self-contained, escaped, and stored data that round-trips."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from PIL import Image

from fairdistill.models.reporting import ReportData, build_figures, render_html


class Page(HTMLParser):
    """The start tags of a document, in order, with their attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def first_in_body(self) -> tuple[str, dict[str, str | None]]:
        names = [tag for tag, _ in self.tags]
        return self.tags[names.index("body") + 1]

    def images(self) -> list[str]:
        return [str(attrs.get("src")) for tag, attrs in self.tags if tag == "img"]


@pytest.fixture(scope="module")
def figures(report: ReportData) -> dict[str, bytes]:
    return build_figures(report)


@pytest.fixture(scope="module")
def page(report: ReportData, figures: dict[str, bytes]) -> str:
    return render_html(report, figures)


def test_the_verdict_comes_first_and_says_passed(page: str) -> None:
    tag, attrs = Page(page).first_in_body()
    assert (tag, attrs.get("id")) == ("section", "verdict")
    assert "passed" in str(attrs.get("class"))
    verdict = page[page.index('id="verdict"') : page.index("</section>")]
    assert "PASSED" in verdict and "Published to" in verdict
    for number in ("0.610", "0.930", "0.900", "0.850"):
        assert number in verdict


def test_a_failed_gate_is_named_with_its_miss(
    failed_report: ReportData, figures: dict[str, bytes]
) -> None:
    page = render_html(failed_report, figures)
    verdict = page[page.index('id="verdict"') : page.index("</section>")]
    assert "FAILED" in verdict and "nothing is published" in verdict
    assert "missed by 0.0200" in verdict
    assert "Published to" not in verdict


def test_a_run_without_gates_says_so(ungated_report: ReportData, figures: dict[str, bytes]) -> None:
    page = render_html(ungated_report, figures)
    assert "NO GATES" in page and "No quality gate is configured" in page


def test_every_string_from_the_data_is_escaped(page: str) -> None:
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert not [tag for tag, _ in Page(page).tags if tag in {"script", "iframe", "object"}]


def test_the_page_loads_nothing_from_outside(page: str) -> None:
    sources = Page(page).images()
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    assert not [t for t, a in Page(page).tags if t == "link" or (t != "a" and "href" in a)]
    assert "url(" not in page and "@import" not in page
    hrefs = [a["href"] for t, a in Page(page).tags if t == "a"]
    assert all(str(href).startswith("#") for href in hrefs)


def test_every_figure_is_embedded_and_decodes(figures: dict[str, bytes], page: str) -> None:
    expected = {
        "fairness_1__script_alert_x_script_co",
        "fairness_2_intersection",
        "utility",
        "marginals",
        "association_difference",
        "distance_to_closest_record",
        "training_teacher",
        "training_student",
        "latent_space",
    }
    assert set(figures) == expected
    sources = Page(page).images()
    assert len(sources) == len(figures)
    for source in sources:
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 1


def test_the_report_data_round_trips_through_json(report: ReportData, page: str) -> None:
    restored = ReportData.from_json(report.to_json())
    assert restored.to_json() == report.to_json()
    assert math.isnan(restored.headlines[2].synthetic)
    assert restored.models[0].latents is not None
    # Drawn again from the stored data, the page is the same to the byte.
    assert render_html(restored) == page


def test_a_tracking_server_gets_a_link_and_a_local_store_the_ui_command(
    report: ReportData, figures: dict[str, bytes]
) -> None:
    served = replace(
        report,
        provenance=replace(report.provenance, tracking_uri="https://mlflow.example/a&b"),
    )
    assert (
        '<a href="https://mlflow.example/a&amp;b/#/experiments/1/runs/parent-run">'
        in render_html(served, figures)
    )
    local = render_html(report, figures)
    assert "mlflow ui --backend-store-uri sqlite:///tmp/mlflow.db" in local


def test_fidelity_and_privacy_sit_beside_the_holdout_with_a_reading(page: str) -> None:
    fidelity = page[page.index('id="fidelity"') : page.index('id="privacy"')]
    assert "real held-out rows" in fidelity
    assert "0.970" in fidelity and "worse than real held-out rows by 0.070" in fidelity
    assert "worse than real held-out rows by 0.040" in fidelity  # mean TVD 0.05 vs 0.01
    privacy = page[page.index('id="privacy"') :]
    assert "as real held-out rows" in privacy  # no copies, as the holdout
