"""Log the sample grids of an image run (real, teacher, student, synthetic) to MLflow."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.config import GenerateConfig
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.image_samples import sample_grids
from fairdistill.models.networks import LatentEncoder
from fairdistill.models.teacher import FairVAE

SAMPLES_FOLDER = "samples"


def log_sample_grids(
    settings: GenerateConfig,
    seed: int,
    codec: ImageCodec,
    real: EncodedTable,
    synthetic: EncodedTable,
    teacher: FairVAE,
    student: LatentEncoder,
) -> list[str]:
    """Log each grid as ``samples/<name>.png`` in the active run; return the artifact paths."""
    grids = sample_grids(
        codec,
        real,
        synthetic,
        teacher,
        student,
        seed=seed,
        prior_components=settings.prior_components,
    )
    with tempfile.TemporaryDirectory() as folder:
        for name, png in grids.items():
            (Path(folder) / f"{name}.png").write_bytes(png)
        mlflow.log_artifacts(folder, SAMPLES_FOLDER)
    return [f"{SAMPLES_FOLDER}/{name}.png" for name in grids]
