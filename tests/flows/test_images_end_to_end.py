"""The same flow on images: a small sample of the coloured digits through every stage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import polars as pl
import pytest
import torch
import yaml

from fairdistill.data import bundled_dataset
from fairdistill.flows.regenerate import regenerate_fair_dataset
from fairdistill.flows.settings import load_settings
from fairdistill.models.config import RunConfig
from fairdistill.tasks.services.sample_grids import SAMPLES_FOLDER

pytestmark = pytest.mark.slow

# Few, small epochs: this checks that images run through every stage, not their quality.
FAST_IMAGE_TRAINING = {
    "teacher": {"epochs": 3, "batch_size": 64, "criterion": "equalized_odds"},
    "student": {"epochs": 3, "batch_size": 64},
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Two intra-op threads on a busy two-core machine contend with other work: this run
    took 149 s with two threads and 43 s with one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory):
    """600 coloured digits (their own split kept) as a user's parquet file and spec."""
    dataset = bundled_dataset("coloured-digits")
    folder = tmp_path_factory.mktemp("images")
    frame = pl.read_parquet(dataset.data_path).sample(n=600, seed=11)
    data = folder / "digits.parquet"
    frame.write_parquet(data)
    spec = yaml.safe_load(dataset.spec_path.read_text(encoding="utf-8"))
    spec.update(min_rows=300, min_group_rows=10)
    spec_path = folder / "digits.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    config = RunConfig.model_validate(
        {
            "data": str(data),
            "spec": str(spec_path),
            "output": str(folder / "published"),
            "gates": {
                "min_utility_ratio": 0.5,
                "max_exact_copy_rate": 0.05,
                "max_exact_copy_excess": None,
                "max_dcr_share_below_holdout_p5": None,
            },
            **FAST_IMAGE_TRAINING,
        }
    )
    return regenerate_fair_dataset(config), frame


def test_images_are_published_with_the_image_metrics(image_run) -> None:
    summary, frame = image_run
    manifest = json.loads(Path(summary.published.manifest).read_text())
    assert manifest["spec"]["modality"] == "image"
    assert manifest["split"]["test_rows"] == frame.filter(pl.col("split") == "test").height
    gates = {gate["gate"]: gate for gate in manifest["gates"]}
    assert gates["min_utility_ratio"]["metric"] == "tstr.cnn.auroc_ratio_to_trtr"
    assert gates["min_utility_ratio"]["passed"]
    metrics = manifest["metrics"]
    for name in ("trtr.cnn.colour.flip_rate", "tstr.cnn.colour.demographic_parity_ratio"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert "tstr.cnn.auroc" in summary.headline
    report = Path(summary.published.report).read_text(encoding="utf-8")
    assert "## Fairness (cnn;" in report and "## Reliance on the sensitive attribute" in report
    card = (Path(summary.published.folder) / "model_card.md").read_text(encoding="utf-8")
    assert "| AUROC (cnn) | 0." in card
    synthetic = pl.read_parquet(summary.published.data)
    assert synthetic.columns == [name for name in frame.columns if name != "split"]
    assert synthetic.height == manifest["split"]["train_rows"]
    pixels = synthetic.select(pl.col("^pixel_.*$"))
    assert pixels.width == 192
    assert pixels.min_horizontal().min() >= 0.0 and pixels.max_horizontal().max() <= 1.0
    assert set(synthetic.get_column("colour")) <= {"red", "green"}


def test_sample_grids_are_logged_with_the_generate_stage(image_run) -> None:
    summary, _ = image_run
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{summary.mlflow_run_id}' "
        "and tags.`fairdistill.stage` = 'generate'",
        output_format="list",
    )
    client = mlflow.MlflowClient()
    logged = {item.path for item in client.list_artifacts(runs[0].info.run_id, SAMPLES_FOLDER)}
    names = ("real", "teacher", "student", "synthetic")
    assert logged == {f"{SAMPLES_FOLDER}/{name}.png" for name in names}
    local = mlflow.artifacts.download_artifacts(
        run_id=runs[0].info.run_id, artifact_path=f"{SAMPLES_FOLDER}/teacher.png"
    )
    assert Path(local).read_bytes().startswith(PNG_SIGNATURE)


def test_the_registered_generator_samples_images(image_run) -> None:
    summary, frame = image_run
    registry = summary.published.registry
    assert registry is not None
    generator = mlflow.pyfunc.load_model(f"models:/{registry.model}/{registry.version}")
    sampled = pl.from_pandas(generator.predict(pl.DataFrame({"rows": [7]}).to_pandas()))
    assert sampled.height == 7 and sampled.columns == [c for c in frame.columns if c != "split"]


def test_the_report_shows_the_sample_grids(image_run) -> None:
    summary, _ = image_run
    html = Path(summary.published.report_html).read_text(encoding="utf-8")
    samples = html[html.index("<h3>Sample images</h3>") :]
    embedded = samples.count('<img src="data:image/png;base64,')
    assert embedded == 4
    assert "decoded as each group" in samples
