"""The report's figures, each returned as PNG bytes.

Drawn on matplotlib's Agg canvas through the object API, never pyplot: no display is needed,
no global figure state is shared between calls, and the same values give the same bytes.
Real data is blue, synthetic orange, the real holdout grey, in every figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
# Per-epoch series that describe the machine, not the model.
UNPLOTTED_HISTORY = frozenset({"epoch_seconds"})


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes; no timestamp or software tag, so equal figures give equal bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.patch.set_facecolor("white")
    return figure


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.array([0.0 if math.isnan(v) else v for v in values], dtype=float)


def _label_bars(axes: Axes, positions: np.ndarray, values: Sequence[float]) -> None:
    for x, value in zip(positions, values, strict=True):
        text = "n/a" if math.isnan(value) else f"{value:.2f}"
        height = 0.0 if math.isnan(value) else value
        axes.annotate(
            text,
            (x, height),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 1),
            textcoords="offset points",
        )


def _grid(count: int, columns: int, width: float, row_height: float) -> tuple[Figure, list[Axes]]:
    rows = max(1, math.ceil(count / columns))
    figure = _figure(width, row_height * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for unused in axes[count:]:
        unused.set_visible(False)
    return figure, axes[:count]


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
        rates_axes.bar(x, _finite(values), width, label=name, color=colour)
        _label_bars(rates_axes, x, values)
    rates_axes.set_xticks(positions, [group.replace("|", "\n") for group in groups], fontsize=8)
    rates_axes.set_ylim(0, 1.3)
    rates_axes.set_ylabel("share of rows")
    rates_axes.set_title(f"Positive rate per group: {attribute}", fontsize=10)
    rates_axes.legend(fontsize=7, loc="upper left", ncols=2)
    _ratio_panel(ratio_axes, ratios, thresholds or {})
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
        axes.bar(
            x, _finite(values), width, color=PROTOCOL_COLOURS[protocol], label=protocol.upper()
        )
        _label_bars(axes, x, values)
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
    axes.set_ylim(0, 1.3)
    axes.set_ylabel("ratio (1 = equal treatment)")
    axes.set_title("Parity ratios of the classifier", fontsize=10)
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
        axes.bar(
            x,
            _finite(values),
            width,
            color=PROTOCOL_COLOURS[protocol],
            label=PROTOCOL_NAMES[protocol],
        )
        _label_bars(axes, x, values)
    axes.axhline(0.5, color="#333333", linestyle=":", linewidth=1, label="chance")
    axes.set_xticks(positions, [family.replace("_", " ") for family in families])
    axes.set_ylim(0, 1.15)
    axes.set_ylabel("AUROC on the test rows")
    axes.legend(fontsize=7, loc="lower right")
    return to_png(figure)


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
        ax.set_title(panel["title"], fontsize=9)
    if axes:
        axes[0].legend(fontsize=7)
    return to_png(figure)


def _categorical_panel(
    axes: Axes, labels: Sequence[str], real: Sequence[float], synthetic: Sequence[float]
) -> None:
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions + 0.2, _finite(real), 0.4, color=REAL, label="real")
    axes.barh(positions - 0.2, _finite(synthetic), 0.4, color=SYNTHETIC, label="synthetic")
    axes.set_yticks(positions, [_shorten(label) for label in labels], fontsize=7)
    axes.set_xlabel("share of rows", fontsize=8)


def _numeric_panel(
    axes: Axes, edges: Sequence[float], real: Sequence[float], synthetic: Sequence[float]
) -> None:
    axes.stairs(_finite(real), edges, fill=True, alpha=0.35, color=REAL, label="real")
    axes.stairs(_finite(real), edges, color=REAL, linewidth=1.2)
    axes.stairs(_finite(synthetic), edges, color=SYNTHETIC, linewidth=1.6, label="synthetic")
    axes.set_ylabel("share of rows", fontsize=8)
    axes.tick_params(labelsize=7)


def _shorten(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def association_difference_chart(
    columns: Sequence[str], real: Sequence[Sequence[float]], synthetic: Sequence[Sequence[float]]
) -> bytes:
    """Heatmap of synthetic minus real pairwise association; white is no difference."""
    difference = np.nan_to_num(np.asarray(synthetic, float) - np.asarray(real, float))
    limit = max(0.1, float(np.abs(difference).max(initial=0.0)))
    size = min(3.5 + 0.3 * len(columns), 10)
    figure = _figure(size + 1.5, size)
    axes = figure.subplots()
    image = axes.imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
    names = [_shorten(str(column), 18) for column in columns]
    axes.set_xticks(np.arange(len(columns)), names, rotation=90, fontsize=7)
    axes.set_yticks(np.arange(len(columns)), names, fontsize=7)
    colourbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colourbar.set_label("synthetic minus real association", fontsize=8)
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
    axes.set_xlabel("distance to the closest real training row (last bin: that far or farther)")
    axes.set_ylabel("share of rows")
    axes.legend(fontsize=8)
    return to_png(figure)


def training_curves_chart(history: Mapping[str, Sequence[float]], title: str) -> bytes:
    """One panel per training metric against the epoch."""
    names = [name for name in history if name not in UNPLOTTED_HISTORY]
    figure, axes = _grid(len(names), 4, 12, 2.4)
    for name, ax in zip(names, axes, strict=True):
        values = list(history[name])
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, color=REAL)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title, fontsize=10)
    return to_png(figure)


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
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel(panel.get("x_label", "component 1"), fontsize=7)
        ax.set_ylabel(panel.get("y_label", "component 2"), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, markerscale=2.5, loc="upper right")
    return to_png(figure)
