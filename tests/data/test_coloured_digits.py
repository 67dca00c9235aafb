"""The bundled coloured digits: a deterministic build, the designed bias, a passing contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairdistill.data import bundled_dataset, bundled_run_defaults
from fairdistill.data.build_coloured_digits import NAME, TINTS, build_coloured_digits, publish
from fairdistill.models.config import RunConfig
from fairdistill.models.spec import load_spec
from fairdistill.models.tables import file_sha256, read_table
from fairdistill.models.validation import validate_frame


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return read_table(bundled_dataset(NAME).data_path)


def test_rebuild_gives_the_bundled_bytes(tmp_path: Path) -> None:
    sha256 = publish(tmp_path)
    assert sha256 == file_sha256(bundled_dataset(NAME).data_path)
    for name in ("spec.yaml", "run.yaml", "README.md"):
        bundled = bundled_dataset(NAME).data_path.parent / name
        assert (tmp_path / name).read_text() == bundled.read_text(), name


def test_contents_and_pixel_layout(frame: pl.DataFrame) -> None:
    assert frame.shape == (1797, 195)
    assert frame.columns[:3] == ["label", "colour", "split"]
    assert frame.columns[3] == "pixel_0_0_0" and frame.columns[-1] == "pixel_2_7_7"
    pixels = frame.select(pl.col("^pixel_.*$")).to_numpy()
    assert frame.schema["pixel_0_0_0"] == pl.Float32
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    images = pixels.reshape(-1, 3, 8, 8)
    red = frame.get_column("colour").to_numpy() == "red"
    # Each image is one grey digit times its tint's channel gains.
    gains = np.array(TINTS["red"])
    np.testing.assert_allclose(images[red][:, 1], images[red][:, 0] * gains[1], atol=1e-6)
    np.testing.assert_allclose(images[red][:, 2], images[red][:, 0] * gains[2], atol=1e-6)


def test_colour_follows_the_label_in_training_only(frame: pl.DataFrame) -> None:
    shares = (
        frame.group_by("split", "label")
        .agg((pl.col("colour") == "red").mean().alias("red"), pl.len().alias("rows"))
        .sort("split", "label")
    )
    red = {(row["split"], row["label"]): row["red"] for row in shares.iter_rows(named=True)}
    assert red[("train", "high")] == pytest.approx(0.9, abs=0.005)
    assert red[("train", "low")] == pytest.approx(0.1, abs=0.005)
    assert red[("test", "high")] == pytest.approx(0.5, abs=0.005)
    assert red[("test", "low")] == pytest.approx(0.5, abs=0.005)
    assert shares.get_column("rows").sum() == 1797
    assert frame.filter(pl.col("split") == "test").height == 599
    assert (
        build_coloured_digits(seed=1).get_column("colour").to_list()
        != frame.get_column("colour").to_list()
    )


def test_the_contract_catches_a_bad_pixel_and_a_bad_split(frame: pl.DataFrame) -> None:
    dataset = bundled_dataset(NAME)
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(1.5)
        .otherwise(pl.col("pixel_0_3_3"))
        .cast(pl.Float32)
        .alias("pixel_0_3_3"),
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("valid"))
        .otherwise(pl.col("split"))
        .alias("split"),
    )
    report = validate_frame(broken, load_spec(dataset.spec_path), source=str(dataset.data_path))
    failed = {(failure.check, failure.column) for failure in report.failures}
    # Everything else of the 584 expectations holds on the bundled data.
    assert failed == {
        ("expect_column_values_to_be_between", "pixel_0_3_3"),
        ("expect_column_values_to_be_in_set", "split"),
    }
    assert report.statistics["gx_evaluated_expectations"] > 3 * 192


def test_run_settings_fill_only_what_a_run_leaves_unset() -> None:
    assert bundled_run_defaults(NAME)["teacher"]["criterion"] == "equalized_odds"
    assert bundled_run_defaults("adult") == {} and bundled_run_defaults("nope") == {}
    config = RunConfig.model_validate({"dataset": NAME, "teacher": {"epochs": 3}})
    assert config.teacher.epochs == 3 and config.teacher.batch_size == 64
    assert config.teacher.criterion == "equalized_odds" and config.student.epochs == 60
    assert RunConfig.model_validate({"dataset": "adult"}).teacher.criterion == "demographic_parity"
    assert RunConfig.model_validate(config.model_dump()) == config
