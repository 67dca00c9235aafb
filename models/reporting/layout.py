"""Margins of the report's figures, summed from the text they hold.

A layout engine (constrained or tight) measures every artist of a figure, twice for the
constrained one, before the figure is drawn; for the report that cost more than the drawing
itself. The report's figures put a few kinds of text in known places (tick labels, axis
labels, titles), so the space each needs is summed here from font metrics and the figure is
drawn once. Every length is in points (1/72 inch).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

POINTS_PER_INCH = 72.0
EDGE = 4.0
# Matplotlib's defaults: tick length plus the gap to its label, the gap between tick labels
# and the axis label, and the gap between an axes and its title.
TICK = 3.5 + 3.5
LABEL_GAP = 4.0
TITLE_GAP = 6.0
# A line of text is about 1.2 font sizes tall; a little more keeps descenders clear.
LINE = 1.25
# Margins never take more than this share of a figure, whatever a label's length: the
# figure is then drawn with overlapping text rather than not at all.
MOST_MARGIN = 0.6


@dataclass(frozen=True)
class Margins:
    """Space around a grid of panels and between its columns (across) and rows (down)."""

    left: float
    right: float
    top: float
    bottom: float
    across: float = 0.0
    down: float = 0.0


def text_width(texts: Iterable[str], size: float) -> float:
    """The width of the widest line among ``texts`` at font ``size``; 0 for no text."""
    lines = (line for text in texts for line in str(text).split("\n"))
    return max((_line_width(line, size) for line in lines), default=0.0)


@functools.lru_cache(maxsize=4096)
def _line_width(line: str, size: float) -> float:
    # Cached: a figure is measured twice, and tick labels repeat across figures.
    font = FontProperties(size=size)
    return text_to_path.get_text_width_height_descent(line, font, ismath=False)[0]


def text_height(lines: int, size: float) -> float:
    return LINE * size * lines


def tick_texts(axis: Axis) -> list[str]:
    """The major tick labels an axis will draw, read without creating its tick artists."""
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-9
    locations = axis.get_majorticklocs()
    # Formatted together, as when drawn: the formatter picks digits from all locations.
    labels = axis.get_major_formatter().format_ticks(locations)
    return [
        label
        for location, label in zip(locations, labels, strict=True)
        if low - slack <= location <= high + slack
    ]


def beside(tick_width: float, label_size: float | None = None) -> float:
    """Space left of an axes: ticks, tick labels ``tick_width`` wide, an optional label."""
    label = LABEL_GAP + text_height(1, label_size) if label_size else 0.0
    return TICK + tick_width + label


def below(tick_lines: int, tick_size: float, label_size: float | None = None) -> float:
    """Space under an axes: ticks, ``tick_lines`` lines of tick labels, an optional label."""
    label = LABEL_GAP + text_height(1, label_size) if label_size else 0.0
    return TICK + text_height(tick_lines, tick_size) + label


def above(title_size: float | None) -> float:
    """Space over an axes for its title; without one, half a 10-point tick label's height."""
    return TITLE_GAP + text_height(1, title_size) if title_size else text_height(0.5, 10)


def fit(figure: Figure, rows: int, columns: int, measure: Callable[[], Margins]) -> None:
    """Place the figure's grid of subplots inside the margins ``measure`` gives, plus an edge.

    Measured twice: how many ticks an axis shows, and so its labels, depends on the panel's
    size, which the first placement sets.
    """
    for _ in range(2):
        _place(figure, rows, columns, measure())


def _place(figure: Figure, rows: int, columns: int, margins: Margins) -> None:
    width, height = figure.get_size_inches() * POINTS_PER_INCH
    left, right, across = _within(
        width, columns, margins.left + EDGE, margins.right + EDGE, margins.across
    )
    top, bottom, down = _within(
        height, rows, margins.top + EDGE, margins.bottom + EDGE, margins.down
    )
    panel_width = (width - left - right - (columns - 1) * across) / columns
    panel_height = (height - top - bottom - (rows - 1) * down) / rows
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=across / panel_width,
        hspace=down / panel_height,
    )


def _within(
    length: float, count: int, start: float, end: float, gap: float
) -> tuple[float, float, float]:
    """Margins and gap along one side, shrunk together if they leave too little for panels."""
    total = start + end + (count - 1) * gap
    shrink = min(1.0, MOST_MARGIN * length / total) if total > 0 else 1.0
    return start * shrink, end * shrink, gap * shrink
