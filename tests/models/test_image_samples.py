"""Sample grids: four PNGs per image run, the same bytes for the same models and seed."""

from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib.image import imread

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.codec import TabularCodec
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.image_samples import group_name, image_grid_png, sample_grids
from fairdistill.models.modality import build_teacher
from fairdistill.models.spec import ImageSpec
from fairdistill.models.student import StudentConfig, build_student
from fairdistill.models.teacher import TeacherConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_codec() -> ImageCodec:
    attributes = TabularCodec(
        columns_out=["label", "colour"],
        target_column="label",
        label_levels=("low", "high"),
        sensitive_columns=["colour"],
        sensitive_levels=[("green", "red")],
        columns=[],
    )
    image = ImageSpec(channels=3, height=8, width=8)
    return ImageCodec(
        columns_out=["label", "colour", *image.pixel_columns], attributes=attributes, image=image
    )


def test_grid_is_a_deterministic_png_with_empty_cells_left_white() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 3, 8, 8)).astype(np.float32)
    labels = np.array([[0, 1, 1], [1, 0, -1]])
    first = image_grid_png(images, labels, ["a", "b"], "title")
    assert first.startswith(PNG_SIGNATURE)
    assert first == image_grid_png(images, labels, ["a", "b"], "title")
    picture = imread(io.BytesIO(first))
    assert picture.ndim == 3 and picture.shape[1] > picture.shape[0]


def test_sample_grids_cover_real_teacher_student_and_synthetic() -> None:
    codec = tiny_codec()
    rng = np.random.default_rng(1)
    table = EncodedTable(
        features=rng.random((40, 192)).astype(np.float32),
        sensitive=rng.integers(0, 2, (40, 1)),
        label=rng.integers(0, 2, 40),
    )
    torch.manual_seed(0)
    teacher = build_teacher(codec, [2], TeacherConfig(latent_dim=4)).eval()
    student = build_student(teacher, StudentConfig()).eval()
    grids = sample_grids(codec, table, table, teacher, student, seed=0, prior_components=2)
    assert set(grids) == {"real", "teacher", "student", "synthetic"}
    assert all(png.startswith(PNG_SIGNATURE) for png in grids.values())
    again = sample_grids(codec, table, table, teacher, student, seed=0, prior_components=2)
    assert again == grids
    assert group_name(codec, [1]) == "colour=red"
