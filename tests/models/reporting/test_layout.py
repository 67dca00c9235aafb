"""Margins summed from font metrics: known lengths, and tick labels read before drawing."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fairdistill.models.reporting.layout import (
    EDGE,
    MOST_MARGIN,
    POINTS_PER_INCH,
    Margins,
    fit,
    text_width,
    tick_texts,
)


def test_text_width_is_the_widest_line_and_grows_with_the_font() -> None:
    assert text_width([], 10) == 0.0
    assert text_width(["WWW"], 10) > text_width(["iii"], 10) > 0
    assert text_width(["ab\nabcdef"], 10) == text_width(["abcdef"], 10)
    assert text_width(["abc", "abcdef"], 10) == text_width(["abcdef"], 10)
    assert text_width(["abcdef"], 14) == pytest.approx(2 * text_width(["abcdef"], 7))


def test_tick_texts_are_the_labels_the_axis_draws() -> None:
    figure = Figure(figsize=(4, 3), dpi=100)
    axes = figure.subplots()
    axes.plot(np.arange(7), [0.0013, 0.02, -0.4, 3.5, 2.0, 11.0, 7.5])
    read = tick_texts(axes.yaxis)
    FigureCanvasAgg(figure).draw()
    low, high = axes.get_ylim()
    # The locator offers a tick past each end of the axis; only those inside are drawn.
    drawn = [
        label.get_text()
        for label in axes.yaxis.get_ticklabels()
        if low <= label.get_position()[1] <= high
    ]
    assert read == drawn
    assert read[0] == "0" and read[-1] == "10"


def panel_edges(figure: Figure) -> list[tuple[float, float, float, float]]:
    """Each panel's left, bottom, right and top, in points from the figure's corner."""
    width, height = figure.get_size_inches() * POINTS_PER_INCH
    return [
        (box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height)
        for box in (axes.get_position() for axes in figure.axes)
    ]


def test_fit_leaves_the_asked_margins_and_gaps() -> None:
    figure = Figure(figsize=(8, 4))
    figure.subplots(2, 2)
    margins = Margins(left=30, right=10, top=20, bottom=40, across=50, down=25)
    fit(figure, 2, 2, lambda: margins)
    edges = panel_edges(figure)
    top_left, top_right, bottom_left, _ = edges
    assert top_left[0] == pytest.approx(30 + EDGE)
    assert top_right[2] == pytest.approx(8 * 72 - 10 - EDGE)
    assert top_left[3] == pytest.approx(4 * 72 - 20 - EDGE)
    assert bottom_left[1] == pytest.approx(40 + EDGE)
    assert top_right[0] - top_left[2] == pytest.approx(50)
    assert top_left[1] - bottom_left[3] == pytest.approx(25)


def test_fit_measures_again_after_placing_the_panels() -> None:
    figure = Figure(figsize=(4, 3))
    figure.subplots()
    calls: list[int] = []

    def measure() -> Margins:
        calls.append(1)
        return Margins(left=10 * len(calls), right=0, top=0, bottom=0)

    fit(figure, 1, 1, measure)
    assert len(calls) == 2
    assert panel_edges(figure)[0][0] == pytest.approx(20 + EDGE)


def test_margins_too_wide_for_the_figure_are_shrunk_not_refused() -> None:
    figure = Figure(figsize=(4, 3))
    figure.subplots(1, 3)
    fit(figure, 1, 3, lambda: Margins(left=900, right=10, top=0, bottom=0, across=900))
    edges = panel_edges(figure)
    panels = sum(right - left for left, _, right, _ in edges)
    assert panels == pytest.approx((1 - MOST_MARGIN) * 4 * 72)
    assert all(right > left for left, _, right, _ in edges)
