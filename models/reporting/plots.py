"""The report's figures, each returned as PNG bytes.

Drawn on matplotlib's Agg canvas through the object API, never pyplot: no display is needed,
no global figure state is shared between calls, and the same values give the same bytes.
Real data is blue, synthetic orange, the real holdout grey, in every figure.

Margins are summed from the text each figure holds (:mod:`layout`) rather than found by a
layout engine, so each figure is drawn once; every text size is set here for that reason.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from fairdistill.models.reporting.layout import (
    EDGE,
    POINTS_PER_INCH,
    Margins,
    above,
    below,
    beside,
    fit,
    text_height,
    text_width,
    tick_texts,
)

REAL = "#3a6ea5"
SYNTHETIC = "#e07b39"
HOLDOUT = "#8c8c8c"
PROTOCOL_COLOURS = {"trtr": REAL, "tstr": SYNTHETIC, "tsts": "#9c6fb0"}
PROTOCOL_NAMES = {
    "trtr": "TRTR (train real, test real)",
    "tstr": "TSTR (train synthetic, test real)",
    "tsts": "TSTS (train synthetic, test synthetic)",
}
RATIO_NAMES = {
    "demographic_parity_ratio": "demographic parity",
    "equalized_odds_ratio": "equalized odds",
}
GROUP_COLOURS = ("#3a6ea5", "#e07b39", "#59a14f", "#c44e52", "#9c6fb0", "#b5912f", "#4fa3a5")
OTHER_COLOUR = "#b0b0b0"
DPI = 100
# zlib level 3 encodes nearly twice as fast as the default 6, for some 6% more bytes.
PNG_COMPRESSION = 3
# Per-epoch series that describe the machine, not the model.
UNPLOTTED_HISTORY = frozenset({"epoch_seconds"})
# Font sizes in points: the axis text of one-panel charts, and of the small panels of grids.
AXIS_TEXT = 10.0
PANEL_TEXT = 7.0
# Room for a tick label centred on the right end of an axis, and between panels.
OVERHANG = 10.0


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes; no timestamp or software tag, so equal figures give equal bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        dpi=DPI,
        metadata={"Software": None},
        pil_kwargs={"compress_level": PNG_COMPRESSION},
    )
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    figure.patch.set_facecolor("white")
    return figure


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.array([0.0 if math.isnan(v) else v for v in values], dtype=float)


def _label_bars(axes: Axes, bars: BarContainer, values: Sequence[float]) -> None:
    labels = ["n/a" if math.isnan(value) else f"{value:.2f}" for value in values]
    axes.bar_label(bars, labels, fontsize=7, padding=1)


def _grid(count: int, columns: int, width: float, row_height: float) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` panels in rows of ``columns``; only the panels are created."""
    rows = max(1, math.ceil(count / columns))
    figure = _figure(width, row_height * rows)
    grid = figure.add_gridspec(rows, columns)
    axes = [figure.add_subplot(grid[index // columns, index % columns]) for index in range(count)]
    return figure, axes


def _title(axes: Axes, text: str, size: float) -> None:
    # At a fixed height: otherwise every draw measures the whole x axis to find tick labels
    # above the axes, and these figures have none there.
    axes.set_title(text, fontsize=size, y=1.0)


def _y_ticks_width(axes: Sequence[Axes], size: float) -> float:
    return max((text_width(tick_texts(ax.yaxis), size) for ax in axes), default=0.0)


def fairness_chart(
    attribute: str,
    groups: Sequence[str],
    label_rate: Mapping[str, Mapping[str, float]],
    prediction_rate: Mapping[str, Mapping[str, float]],
    ratios: Mapping[str, Mapping[str, float]],
    thresholds: Mapping[str, float] | None = None,
) -> bytes:
    """Left: positive rate per group (real labels, synthetic labels, TSTR predictions).

    Right: demographic parity and equalized odds ratios per protocol, with parity (1) and any
    gate threshold (keyed by ratio name) drawn across.
    """
    figure = _figure(11, 3.8)
    rates_axes, ratio_axes = figure.subplots(1, 2, width_ratios=(1.4, 1))
    positions = np.arange(len(groups))
    series = (
        ("positive label, real data", REAL, label_rate.get("real", {})),
        ("positive label, synthetic data", SYNTHETIC, label_rate.get("synthetic", {})),
        (
            "predicted positive, TSTR classifier",
            PROTOCOL_COLOURS["tsts"],
            prediction_rate.get("tstr", {}),
        ),
    )
    width = 0.8 / len(series)
    for index, (name, colour, rates) in enumerate(series):
        values = [rates.get(group, math.nan) for group in groups]
        x = positions + (index - 1) * width
        bars = rates_axes.bar(x, _finite(values), width, label=name, color=colour)
        _label_bars(rates_axes, bars, values)
    group_labels = [group.replace("|", "\n") for group in groups]
    rates_axes.set_xticks(positions, group_labels, fontsize=8)
    rates_axes.set_ylim(0, 1.3)
    rates_axes.set_ylabel("share of rows", fontsize=AXIS_TEXT)
    _title(rates_axes, f"Positive rate per group: {attribute}", 10)
    rates_axes.legend(fontsize=7, loc="upper left", ncols=2)
    _ratio_panel(ratio_axes, ratios, thresholds or {})
    for axes in (rates_axes, ratio_axes):
        axes.tick_params(axis="y", labelsize=AXIS_TEXT)
    lines = max((label.count("\n") + 1 for label in group_labels), default=1)

    def margins() -> Margins:
        return Margins(
            left=beside(_y_ticks_width([rates_axes], AXIS_TEXT), AXIS_TEXT),
            right=0.0,
            top=above(10),
            bottom=below(lines, 8),
            across=beside(_y_ticks_width([ratio_axes], AXIS_TEXT), AXIS_TEXT) + OVERHANG,
        )

    fit(figure, 1, 2, margins)
    return to_png(figure)


def _ratio_panel(
    axes: Axes, ratios: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, float]
) -> None:
    names = list(RATIO_NAMES)
    positions = np.arange(len(names))
    protocols = [p for p in PROTOCOL_COLOURS if p in ratios]
    width = 0.8 / max(len(protocols), 1)
    for index, protocol in enumerate(protocols):
        values = [ratios[protocol].get(name, math.nan) for name in names]
        x = positions + (index - (len(protocols) - 1) / 2) * width
        bars = axes.bar(
            x, _finite(values), width, color=PROTOCOL_COLOURS[protocol], label=protocol.upper()
        )
        _label_bars(axes, bars, values)
    axes.axhline(1.0, color="#333333", linestyle=":", linewidth=1, label="parity")
    gated = [(index, thresholds[name]) for index, name in enumerate(names) if name in thresholds]
    for order, (index, threshold) in enumerate(gated):
        axes.hlines(
            threshold,
            index - 0.45,
            index + 0.45,
            colors="#c0392b",
            linestyles="--",
            label="gate" if order == 0 else None,
        )
    axes.set_xticks(positions, [RATIO_NAMES[name] for name in names], fontsize=8)
    # Fixed, so the names stay centred over their place when no protocol has a bar.
    axes.set_xlim(-0.5, len(names) - 0.5)
    axes.set_ylim(0, 1.3)
    axes.set_ylabel("ratio (1 = equal treatment)", fontsize=AXIS_TEXT)
    _title(axes, "Parity ratios of the classifier", 10)
    axes.legend(fontsize=7, loc="upper left", ncols=3)


def utility_chart(scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> bytes:
    """AUROC per classifier family (``scores``: family → protocol → metric) and protocol."""
    families = list(scores)
    figure = _figure(8, 3.4)
    axes = figure.subplots()
    positions = np.arange(len(families))
    protocols = list(PROTOCOL_COLOURS)
    width = 0.8 / len(protocols)
    for index, protocol in enumerate(protocols):
        values = [scores[f].get(protocol, {}).get("auroc", math.nan) for f in families]
        x = positions + (index - 1) * width
        bars = axes.bar(
            x,
            _finite(values),
            width,
            color=PROTOCOL_COLOURS[protocol],
            label=PROTOCOL_NAMES[protocol],
        )
        _label_bars(axes, bars, values)
    axes.axhline(0.5, color="#333333", linestyle=":", linewidth=1, label="chance")
    axes.set_xticks(positions, [family.replace("_", " ") for family in families])
    axes.set_ylim(0, 1.15)
    axes.set_ylabel("AUROC on the test rows", fontsize=AXIS_TEXT)
    axes.tick_params(labelsize=AXIS_TEXT)
    axes.legend(fontsize=7, loc="lower right")
    fit(figure, 1, 1, lambda: _single_margins(axes, x_label=False))
    return to_png(figure)


def _single_margins(axes: Axes, *, x_label: bool) -> Margins:
    """Margins of a one-panel chart without a title, its text in :data:`AXIS_TEXT`."""
    return Margins(
        left=beside(_y_ticks_width([axes], AXIS_TEXT), AXIS_TEXT),
        right=OVERHANG,
        top=above(None),
        bottom=below(1, AXIS_TEXT, AXIS_TEXT if x_label else None),
    )


def marginals_chart(panels: Sequence[Mapping[str, Any]], columns: int = 3) -> bytes:
    """Real and synthetic distributions of several columns, one panel each.

    A panel has ``title``, ``kind`` (categorical or numeric), ``real`` and ``synthetic``
    shares, and ``labels`` (categorical levels) or ``edges`` (numeric bin edges).
    """
    figure, axes = _grid(len(panels), columns, 12, 3.2)
    for panel, ax in zip(panels, axes, strict=True):
        if panel["kind"] == "categorical":
            _categorical_panel(ax, panel["labels"], panel["real"], panel["synthetic"])
        else:
            _numeric_panel(ax, panel["edges"], panel["real"], panel["synthetic"])
    if axes:
        axes[0].legend(fontsize=7)
    rows = max(1, math.ceil(len(panels) / columns))
    fit(figure, rows, columns, lambda: _marginal_margins(panels, axes))
    _set_titles(figure, axes, [panel["title"] for panel in panels])
    return to_png(figure)


def _set_titles(figure: Figure, axes: Sequence[Axes], titles: Sequence[str]) -> None:
    """Panel titles in 9 points, each cut to its panel's width once the panels are placed."""
    figure_width = figure.get_size_inches()[0] * POINTS_PER_INCH
    for ax, title in zip(axes, titles, strict=True):
        _title(ax, _cut(title, ax.get_position().width * figure_width, 9), 9)


def _cut(title: str, width: float, size: float) -> str:
    """``title`` shortened before its last parenthesis (a score) until it is ``width`` wide."""
    if text_width([title], size) <= width:
        return title
    head, bracket, score = title.rpartition(" (")
    head, score = (head, bracket + score) if bracket else (title, "")
    while head and text_width([f"{head}…{score}"], size) > width:
        head = head[:-1]
    return f"{head}…{score}"


def _marginal_margins(panels: Sequence[Mapping[str, Any]], axes: Sequence[Axes]) -> Margins:
    lefts, bottoms = [0.0], [0.0]
    for panel, ax in zip(panels, axes, strict=True):
        if panel["kind"] == "categorical":
            labels = [_shorten(label) for label in panel["labels"]]
            lefts.append(beside(text_width(labels, PANEL_TEXT)))
            bottoms.append(below(1, AXIS_TEXT, 8))
        else:
            lefts.append(beside(_y_ticks_width([ax], PANEL_TEXT), 8))
            bottoms.append(below(1, PANEL_TEXT))
    return Margins(
        left=max(lefts),
        right=OVERHANG,
        top=above(9),
        bottom=max(bottoms),
        across=max(lefts) + OVERHANG,
        down=max(bottoms) + above(9),
    )


def _categorical_panel(
    axes: Axes, labels: Sequence[str], real: Sequence[float], synthetic: Sequence[float]
) -> None:
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions + 0.2, _finite(real), 0.4, color=REAL, label="real")
    axes.barh(positions - 0.2, _finite(synthetic), 0.4, color=SYNTHETIC, label="synthetic")
    axes.set_yticks(positions, [_shorten(label) for label in labels], fontsize=PANEL_TEXT)
    axes.tick_params(axis="x", labelsize=AXIS_TEXT)
    axes.set_xlabel("share of rows", fontsize=8)


def _numeric_panel(
    axes: Axes, edges: Sequence[float], real: Sequence[float], synthetic: Sequence[float]
) -> None:
    axes.stairs(_finite(real), edges, fill=True, alpha=0.35, color=REAL, label="real")
    axes.stairs(_finite(real), edges, color=REAL, linewidth=1.2)
    axes.stairs(_finite(synthetic), edges, color=SYNTHETIC, linewidth=1.6, label="synthetic")
    axes.set_ylabel("share of rows", fontsize=8)
    axes.tick_params(labelsize=PANEL_TEXT)


def _shorten(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def association_difference_chart(
    columns: Sequence[str], real: Sequence[Sequence[float]], synthetic: Sequence[Sequence[float]]
) -> bytes:
    """Heatmap of synthetic minus real pairwise association; white is no difference.

    The figure is as tall as before the heatmap grew with the columns; its width follows from
    the square heatmap, the column names and the colour bar.
    """
    difference = np.nan_to_num(np.asarray(synthetic, float) - np.asarray(real, float))
    limit = max(0.1, float(np.abs(difference).max(initial=0.0)))
    height = min(3.5 + 0.3 * len(columns), 10) * POINTS_PER_INCH
    names = [_shorten(str(column), 18) for column in columns]
    left = EDGE + beside(text_width(names, PANEL_TEXT))
    bottom = EDGE + beside(text_width(names, PANEL_TEXT))
    side = max(height - bottom - EDGE - text_height(0.5, PANEL_TEXT), 0.3 * height)
    bar_width, bar_height = 0.25 * POINTS_PER_INCH, 0.8 * side
    figure = _figure(1, height / POINTS_PER_INCH)
    axes = figure.add_axes((0, 0, 1, 1))
    bar_axes = figure.add_axes((0, 0, 1, 1))
    image = axes.imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes.set_xticks(np.arange(len(columns)), names, rotation=90, fontsize=PANEL_TEXT)
    axes.set_yticks(np.arange(len(columns)), names, fontsize=PANEL_TEXT)
    colourbar = figure.colorbar(image, cax=bar_axes)
    colourbar.ax.tick_params(labelsize=AXIS_TEXT)
    colourbar.set_label("synthetic minus real association", fontsize=8)
    bar_left = left + side + 2 * OVERHANG
    bar_bottom = bottom + (side - bar_height) / 2
    # The colour bar's ticks depend on its height, fixed above; so are its labels.
    bar_text = beside(text_width(tick_texts(colourbar.ax.yaxis), AXIS_TEXT), 8)
    width = bar_left + bar_width + bar_text + EDGE
    figure.set_size_inches(width / POINTS_PER_INCH, height / POINTS_PER_INCH)
    axes.set_position((left / width, bottom / height, side / width, side / height))
    bar_axes.set_position(
        (bar_left / width, bar_bottom / height, bar_width / width, bar_height / height)
    )
    return to_png(figure)


def distance_chart(
    edges: Sequence[float], synthetic: Sequence[float], holdout: Sequence[float]
) -> bytes:
    """Distances to the closest training row: synthetic rows against unseen real rows."""
    figure = _figure(8, 3.2)
    axes = figure.subplots()
    for counts, colour, name in (
        (holdout, HOLDOUT, "real holdout rows (never trained on)"),
        (synthetic, SYNTHETIC, "synthetic rows"),
    ):
        values = _finite(counts)
        shares = values / values.sum() if values.sum() > 0 else values
        axes.stairs(
            shares,
            edges,
            color=colour,
            linewidth=1.6,
            label=name,
            fill=colour == HOLDOUT,
            alpha=0.45 if colour == HOLDOUT else 1.0,
        )
    axes.set_xlabel(
        "distance to the closest real training row (last bin: that far or farther)",
        fontsize=AXIS_TEXT,
    )
    axes.set_ylabel("share of rows", fontsize=AXIS_TEXT)
    axes.tick_params(labelsize=AXIS_TEXT)
    axes.legend(fontsize=8)
    fit(figure, 1, 1, lambda: _single_margins(axes, x_label=True))
    return to_png(figure)


def training_curves_chart(history: Mapping[str, Sequence[float]], title: str) -> bytes:
    """One panel per training metric against the epoch."""
    names = [name for name in history if name not in UNPLOTTED_HISTORY]
    figure, axes = _grid(len(names), 4, 12, 2.4)
    for name, ax in zip(names, axes, strict=True):
        values = list(history[name])
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, color=REAL)
        _title(ax, name.replace("_", " "), 9)
        ax.set_xlabel("epoch", fontsize=PANEL_TEXT)
        ax.tick_params(labelsize=PANEL_TEXT)
        # Five ticks read a trend in a small panel; more crowd it and cost drawing time.
        ax.locator_params(nbins=5)
        ax.xaxis.get_major_locator().set_params(integer=True)
    height = figure.get_size_inches()[1] * POINTS_PER_INCH
    figure.suptitle(title, fontsize=10, y=1 - EDGE / height, va="top")
    rows = max(1, math.ceil(len(names) / 4))
    fit(figure, rows, 4, lambda: _panel_margins(axes, above(9) + text_height(1, 10) + EDGE))
    return to_png(figure)


def _panel_margins(axes: Sequence[Axes], top: float) -> Margins:
    """Margins of a grid of small panels: titles, tick labels and axis labels in 7 points."""
    left = beside(_y_ticks_width(axes, PANEL_TEXT), PANEL_TEXT)
    bottom = below(1, PANEL_TEXT, PANEL_TEXT)
    return Margins(
        left=left,
        right=OVERHANG,
        top=top,
        bottom=bottom,
        across=left + OVERHANG,
        down=bottom + above(9),
    )


def latent_chart(panels: Sequence[Mapping[str, Any]]) -> bytes:
    """Scatter plots of 2-D latent projections, coloured by group.

    A panel has ``title``, ``points`` (n by 2) and ``labels`` (n group names). More than
    seven groups: the seven largest keep a colour, the rest are grey.
    """
    figure, axes = _grid(len(panels), 2, 11, 4.2)
    for panel, ax in zip(panels, axes, strict=True):
        points = np.asarray(panel["points"], dtype=float).reshape(-1, 2)
        labels = np.asarray(panel["labels"], dtype=str)
        values, counts = np.unique(labels, return_counts=True)
        ordered = [str(v) for _, v in sorted(zip(-counts, values, strict=True))]
        coloured = ordered[: len(GROUP_COLOURS)]
        rest = ~np.isin(labels, coloured)
        if rest.any():
            ax.scatter(points[rest, 0], points[rest, 1], s=5, color=OTHER_COLOUR, label="other")
        for group, colour in zip(coloured, GROUP_COLOURS, strict=False):
            member = labels == group
            ax.scatter(
                points[member, 0],
                points[member, 1],
                s=5,
                alpha=0.6,
                color=colour,
                label=_shorten(group),
            )
        ax.set_xlabel(panel.get("x_label", "component 1"), fontsize=PANEL_TEXT)
        ax.set_ylabel(panel.get("y_label", "component 2"), fontsize=PANEL_TEXT)
        ax.tick_params(labelsize=PANEL_TEXT)
        ax.legend(fontsize=7, markerscale=2.5, loc="upper right")
    rows = max(1, math.ceil(len(panels) / 2))
    fit(figure, rows, 2, lambda: _panel_margins(axes, above(9)))
    _set_titles(figure, axes, [panel["title"] for panel in panels])
    return to_png(figure)
