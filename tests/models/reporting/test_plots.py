"""Every figure is a PNG that decodes, shows something, and is the same for the same values.

Each is also drawn once (no layout pass before the drawing), with its text inside the image
and its panels apart.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image

from fairdistill.models.reporting import plots

FIGURES: dict[str, Callable[[], bytes]] = {
    "fairness": lambda: plots.fairness_chart(
        "sex",
        ["privileged", "a=unprivileged|b=privileged"],
        {"real": {"privileged": 0.3, "a=unprivileged|b=privileged": 0.1}, "synthetic": {}},
        {"tstr": {"privileged": 0.25}},
        {"trtr": {"demographic_parity_ratio": 0.4}, "tstr": {"equalized_odds_ratio": math.nan}},
        {"demographic_parity_ratio": 0.8},
    ),
    "utility": lambda: plots.utility_chart(
        {"gradient_boosting": {"trtr": {"auroc": 0.9}, "tstr": {"auroc": math.nan}}}
    ),
    "marginals": lambda: plots.marginals_chart(
        [
            {
                "title": "colour",
                "kind": "categorical",
                "labels": ["a", "b"] * 20,
                "real": [0.025] * 40,
                "synthetic": [0.025] * 40,
            },
            {
                "title": "age",
                "kind": "numeric",
                "edges": [0, 1, 2],
                "real": [0.5, 0.5],
                "synthetic": [math.nan, 1.0],
            },
        ]
    ),
    "association": lambda: plots.association_difference_chart(
        ["a", "b"], [[1, 0.5], [0.5, 1]], [[1, math.nan], [math.nan, 1]]
    ),
    "distances": lambda: plots.distance_chart([0, 1, 2], [0, 0], [3, 1]),
    "training": lambda: plots.training_curves_chart(
        {"loss": [3.0, 2.0, 1.5], "epoch_seconds": [1.0, 1.0, 1.0]}, "teacher"
    ),
    "latents": lambda: plots.latent_chart(
        [
            {
                "title": "teacher",
                "points": np.random.default_rng(0).normal(size=(50, 2)).tolist(),
                "labels": [f"group {i % 9}" for i in range(50)],
            },
        ]
    ),
}

LONG = "Married-spouse-absent-with-a-long-tail"
# Harder inputs for the layout: long and multi-line labels, empty panels, wide tick labels.
CROWDED: dict[str, Callable[[], bytes]] = {
    "fairness of three attributes": lambda: plots.fairness_chart(
        "intersection",
        ["a=privileged|b=unprivileged|c=privileged", "a=unprivileged|b=privileged|c=other"],
        {"real": {}, "synthetic": {}},
        {},
        {},
    ),
    "marginals with long levels": lambda: plots.marginals_chart(
        [
            {
                "title": f"{LONG} (TVD 0.20)",
                "kind": "categorical",
                "labels": [LONG, "b", "(missing)"],
                "real": [0.5, 0.3, 0.2],
                "synthetic": [0.4, 0.4, 0.2],
            },
            {
                "title": "income",
                "kind": "numeric",
                "edges": [0.0, 250000.0, 500000.0, 1000000.0],
                "real": [0.9, 0.09, 0.01],
                "synthetic": [0.8, 0.15, 0.05],
            },
        ]
        * 2
    ),
    "association of long names": lambda: plots.association_difference_chart(
        [LONG, "b", "hours_per_week_worked"], np.eye(3).tolist(), np.full((3, 3), 0.2).tolist()
    ),
    "training with large values": lambda: plots.training_curves_chart(
        {"reconstruction": [-12345.0, -20000.0, -25000.5], "kl": [0.001, 0.0005, 0.0002]},
        "student",
    ),
}


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_is_a_drawn_png_and_repeatable(name: str) -> None:
    png = FIGURES[name]()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = decode(png).convert("RGB")
    assert image.width >= 400 and image.height >= 150
    # A blank canvas has one colour; axes, bars and text bring dozens.
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 10
    assert FIGURES[name]() == png


def test_bars_use_the_real_and_synthetic_colours() -> None:
    image = decode(FIGURES["utility"]()).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    for hex_colour in (plots.REAL, plots.SYNTHETIC):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, hex_colour


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the plot functions turn into PNG bytes, kept after drawing."""
    figures: list[Figure] = []
    to_png = plots.to_png

    def keep(figure: Figure) -> bytes:
        figures.append(figure)
        return to_png(figure)

    monkeypatch.setattr(plots, "to_png", keep)
    return figures


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_is_drawn_once(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[Figure] = []
    draw = Figure.draw

    def counted(figure: Figure, renderer: object) -> None:
        draws.append(figure)
        draw(figure, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    FIGURES[name]()
    assert len(draws) == 1


@pytest.mark.parametrize("name", sorted(FIGURES) + sorted(CROWDED))
def test_text_stays_inside_the_image_and_panels_apart(name: str, drawn: list[Figure]) -> None:
    (FIGURES | CROWDED)[name]()
    (figure,) = drawn
    renderer = figure.canvas.get_renderer()
    canvas = figure.bbox.padded(1)
    # Each panel with its ticks, labels, title and colour bar label, as drawn.
    boxes = [axes.get_tightbbox(renderer) for axes in figure.axes if axes.get_visible()]
    boxes += [text.get_window_extent(renderer) for text in figure.texts if text.get_text()]
    for box in boxes:
        assert Bbox.union([box, canvas]).bounds == pytest.approx(canvas.bounds), box
    for index, box in enumerate(boxes):
        for other in boxes[index + 1 :]:
            overlap = Bbox.intersection(box, other)
            assert overlap is None or overlap.width * overlap.height < 1, (box, other)
