"""Every figure is a PNG that decodes, shows something, and is the same for the same values."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pytest
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
