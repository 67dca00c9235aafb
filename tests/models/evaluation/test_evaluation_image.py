"""Image evaluation: tint flips, a colour shortcut detected, the tabular metric names kept."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.data.build_coloured_digits import TINTS, tinted
from fairdistill.models.evaluation.image import (
    colour_profiles,
    evaluate_images,
    flipped_test_images,
    frame_images,
    image_summary,
    image_tstr_trtr,
    retint,
)
from fairdistill.models.spec import DatasetSpec, complete_spec, load_spec
from fairdistill.models.splitting import declared_split
from fairdistill.models.tables import read_table

LR_ONLY = ("logistic_regression",)


@pytest.fixture(scope="module")
def digits() -> tuple[pl.DataFrame, pl.DataFrame, DatasetSpec]:
    dataset = bundled_dataset("coloured-digits")
    frame = read_table(dataset.data_path)
    spec = complete_spec(load_spec(dataset.spec_path), frame)
    train, test = declared_split(frame, "split")
    return train.head(500), test.head(240), spec


def recoloured(frame: pl.DataFrame, spec: DatasetSpec, colours: np.ndarray) -> pl.DataFrame:
    """``frame`` with each image re-tinted in the given colour (and the colour column set)."""
    image = spec.image
    greys = frame_images(frame, image).sum(axis=1) / sum(TINTS["red"])
    pixels = tinted(greys, colours).reshape(frame.height, -1).astype(np.float32)
    return frame.with_columns(
        pl.Series("colour", colours.astype(str)),
        *(pl.Series(name, pixels[:, i]) for i, name in enumerate(image.pixel_columns)),
    )


def test_a_flip_swaps_the_tint_exactly() -> None:
    rng = np.random.default_rng(0)
    greys = rng.random((6, 8, 8))
    colours = np.array(["red", "green", "red", "red", "green", "green"], dtype=object)
    images = tinted(greys, colours)
    profiles = colour_profiles(images, colours.astype(str))
    for name, gains in TINTS.items():
        np.testing.assert_allclose(profiles[name], np.array(gains) / sum(gains))
    red = colours == "red"
    as_green = np.full(red.sum(), "green", dtype=object)
    np.testing.assert_allclose(
        retint(images[red], profiles["green"]), tinted(greys[red], as_green), atol=1e-6
    )


def test_flipped_test_images_use_the_other_groups_tint(digits) -> None:
    train, test, spec = digits
    flipped = flipped_test_images(train, test, spec)["colour"]
    original = frame_images(test, spec.image)
    red = test.get_column("colour").to_numpy() == "red"
    # A red image turned green: the green channel now carries what the red one did.
    np.testing.assert_allclose(flipped[red][:, 1], original[red][:, 0], atol=1e-5)
    np.testing.assert_allclose(flipped[~red][:, 0], original[~red][:, 1], atol=1e-5)


def test_a_colour_shortcut_is_caught_and_colour_free_data_is_fairer(digits) -> None:
    train, test, spec = digits
    rng = np.random.default_rng(1)
    # Colour drawn independently of the label: only the shape predicts it.
    fair = recoloured(train, spec, np.where(rng.random(train.height) < 0.5, "red", "green"))
    # The label is the colour: the shape says nothing about it.
    shortcut = train.with_columns(
        pl.when(pl.col("colour") == "red")
        .then(pl.lit("high"))
        .otherwise(pl.lit("low"))
        .alias("label")
    )
    result = evaluate_images(train, test, fair, spec, seed=0, families=LR_ONLY).metrics
    cheat = evaluate_images(train, test, shortcut, spec, seed=0, families=LR_ONLY).metrics
    prefix = "logistic_regression.colour"
    assert cheat[f"tstr.{prefix}.flip_rate"] > 0.9
    assert result[f"tstr.{prefix}.flip_rate"] < 0.5 * result[f"trtr.{prefix}.flip_rate"]
    assert (
        result[f"tstr.{prefix}.demographic_parity_ratio"]
        > result[f"trtr.{prefix}.demographic_parity_ratio"] + 0.2
    )
    assert result["label_parity.colour"] > 0.7 > 0.2 > result["real.label_parity.colour"]
    assert result["tstr.logistic_regression.accuracy"] > result["trtr.logistic_regression.accuracy"]


def test_metric_names_and_tables_follow_the_tabular_evaluation(digits) -> None:
    train, test, spec = digits
    synthetic = train.drop("split").sample(n=300, seed=3)
    result = evaluate_images(train, test, synthetic, spec, seed=0)
    metrics = result.metrics
    for family in ("cnn", "logistic_regression"):
        for protocol in ("trtr", "tstr", "tsts"):
            assert metrics[f"{protocol}.{family}.trained"] == 1.0
            assert 0.5 < metrics[f"{protocol}.{family}.auroc"] <= 1.0
            assert f"{protocol}.{family}.colour.equalized_odds_ratio" in metrics
        assert f"tstr.{family}.auroc_ratio_to_trtr" in metrics
        assert f"tsts.{family}.colour.flip_rate" not in metrics
    # Every synthetic image here is a training image: copies and zero distances.
    assert metrics["privacy.exact_copy_rate"] == 1.0
    assert metrics["privacy.holdout_exact_copy_rate"] == 0.0
    assert metrics["privacy.dcr.synthetic_median"] == 0.0
    assert metrics["fidelity.authenticity"] == 0.0
    assert {"fidelity.alpha_precision", "fidelity.coverage", "fidelity.tvd.label"} <= set(metrics)
    assert "fidelity.ks.channel_0_mean" in metrics and "fidelity.ks.ink_share" in metrics
    assert list(result.tables["utility"]) == ["cnn", "logistic_regression"]
    assert set(result.tables["fidelity"]["association"]["columns"]) == {
        "label",
        "colour",
        "channel_0_mean",
        "channel_1_mean",
        "channel_2_mean",
        "ink_share",
    }
    assert set(result.tables["privacy"]) >= {"dcr", "dcr_histogram", "exact_copy_rate"}


def test_image_summary_measures_each_channel(digits) -> None:
    train, _, spec = digits
    summary = image_summary(train.head(50), spec)
    images = frame_images(train.head(50), spec.image)
    np.testing.assert_allclose(summary.get_column("channel_1_mean"), images[:, 1].mean(axis=(1, 2)))
    red = summary.filter(pl.col("colour") == "red")
    assert (red.get_column("channel_0_mean") > red.get_column("channel_1_mean")).all()
    assert summary.get_column("ink_share").is_between(0.0, 1.0).all()


def test_a_spec_without_an_image_section_is_refused(digits) -> None:
    train, test, _ = digits
    spec = load_spec(bundled_dataset("german").spec_path)
    with pytest.raises(ValueError, match="no image section"):
        evaluate_images(train, test, train, spec, seed=0)


def test_synthetic_images_of_one_label_train_nothing_and_say_why(digits) -> None:
    train, test, spec = digits
    collapsed = train.with_columns(pl.lit("high").alias("label"))
    result = evaluate_images(train, test, collapsed, spec, seed=0, families=LR_ONLY)
    assert result.metrics["trtr.logistic_regression.trained"] == 1.0
    for protocol in ("tstr", "tsts"):
        assert result.metrics[f"{protocol}.logistic_regression.trained"] == 0.0
        assert np.isnan(result.metrics[f"{protocol}.logistic_regression.auroc"])
        reason = result.tables["utility"]["logistic_regression"][protocol]["reason"]
        assert "single label class" in reason
    assert np.isnan(result.metrics["tstr.logistic_regression.auroc_ratio_to_trtr"])
    assert "tstr.logistic_regression.colour.flip_rate" not in result.metrics


def test_tsts_without_test_images_says_so_and_keeps_flips_to_real_test_images(digits) -> None:
    train, test, spec = digits
    # One image per label: rounding 30 % of one image gives the TSTS test part nothing.
    pair = pl.concat([train.filter(pl.col("label") == value).head(1) for value in ("high", "low")])
    utility = image_tstr_trtr(train, test, pair, spec, 0, LR_ONLY)["logistic_regression"]
    assert utility["tsts"]["trained"] is False
    assert utility["tsts"]["reason"] == "there are no test images"
    assert utility["tsts"]["flips"] == {}
    assert set(utility["trtr"]["flips"]) == set(utility["tstr"]["flips"]) == {"colour"}
