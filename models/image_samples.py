"""Sample grids of an image run, as PNG bytes: what the real, teacher and student images look like.

One grid per source, one row per sensitive group:

- ``real``: real training images of each group;
- ``teacher`` and ``student``: latents drawn from a prior fitted on that encoder's codes of
  the training images, the same latents decoded under every group (each column is one
  latent). With a fair latent, a column keeps its shape and label and changes only in what
  the sensitive attribute shows, the colour of the coloured digits;
- ``synthetic``: the generated images of each group, as published.

Decoded grids show the decoder's mean (no pixel noise), the clearest picture of what the
latent holds. Each image is captioned with its label. Drawn on matplotlib's Agg canvas like
the report's figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.generation import decode_latents
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.networks import LatentEncoder
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.reporting.plots import to_png
from fairdistill.models.teacher import FairVAE, encode_latents

IMAGES_PER_ROW = 8
# What each grid shows, in the order a report presents them.
SAMPLE_CAPTIONS = {
    "real": "Real training images, one row per sensitive group.",
    "synthetic": "Published synthetic images, one row per sensitive group.",
    "teacher": "The teacher's latent codes of real images (columns) decoded as each group "
    "(rows): a fair latent changes only what the group itself changes.",
    "student": "The same for the distilled student's latent codes.",
}
_CELL_INCHES = 0.8
# Pixels of white between cells, leaving room for each cell's caption.
_GAP = 3


def sample_grids(
    codec: ImageCodec,
    real: EncodedTable,
    synthetic: EncodedTable,
    teacher: FairVAE,
    student: LatentEncoder,
    *,
    seed: int,
    prior_components: int,
    per_row: int = IMAGES_PER_ROW,
) -> dict[str, bytes]:
    """The four grids (see the module notes) by name: real, teacher, student, synthetic."""
    groups = np.unique(real.sensitive, axis=0)
    names = [group_name(codec, group) for group in groups]
    grids = {
        "real": _grid_of_rows(codec, real, groups, names, per_row, seed, "Real training images"),
        "synthetic": _grid_of_rows(
            codec, synthetic, groups, names, per_row, seed, "Synthetic images (published)"
        ),
    }
    for name, encoder in (("teacher", teacher.encoder), ("student", student)):
        images, labels = decoded_under_each_group(
            codec, real, teacher, encoder, groups, seed=seed, components=prior_components, n=per_row
        )
        title = f"{name.capitalize()}: the same latents (columns) decoded for each group (rows)"
        grids[name] = image_grid_png(images, labels, names, title, label_levels=codec.label_levels)
    return grids


def group_name(codec: ImageCodec, group: Sequence[int]) -> str:
    """``colour=red``; several attributes joined by ``|``."""
    return "|".join(
        f"{column}={levels[index]}"
        for column, levels, index in zip(
            codec.sensitive_columns, codec.sensitive_levels, group, strict=True
        )
    )


def decoded_under_each_group(
    codec: ImageCodec,
    real: EncodedTable,
    teacher: FairVAE,
    encoder: LatentEncoder,
    groups: np.ndarray,
    *,
    seed: int,
    components: int,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` latents from a prior on ``encoder``'s codes, decoded under each group:
    images (groups, n, C, H, W) and labels (groups, n)."""
    levels = codec.sensitive_level_counts
    codes = encode_latents(encoder, real, levels)
    z = GaussianMixturePrior.fit(codes, components, seed).sample(n, seed=seed)
    images, labels = [], []
    for group in groups:
        sensitive = np.repeat(group[None, :], n, axis=0)
        features, label = decode_latents(
            teacher.decoder,
            teacher.label_head,
            z,
            sensitive,
            levels,
            seed=seed,
            criterion=teacher.criterion,
            noise=False,
        )
        images.append(features.reshape(n, *codec.shape))
        labels.append(label)
    return np.stack(images), np.stack(labels)


def _grid_of_rows(
    codec: ImageCodec,
    table: EncodedTable,
    groups: np.ndarray,
    names: list[str],
    per_row: int,
    seed: int,
    title: str,
) -> bytes:
    rng = np.random.default_rng(seed)
    images = np.zeros((len(groups), per_row, *codec.shape), dtype=np.float32)
    labels = np.full((len(groups), per_row), -1, dtype=np.int64)
    for row, group in enumerate(groups):
        members = np.flatnonzero((table.sensitive == group).all(axis=1))
        chosen = np.sort(rng.choice(members, size=min(per_row, members.size), replace=False))
        images[row, : chosen.size] = codec.images(table)[chosen]
        labels[row, : chosen.size] = table.label[chosen]
    return image_grid_png(images, labels, names, title, label_levels=codec.label_levels)


def image_grid_png(
    images: np.ndarray,
    labels: np.ndarray,
    row_names: Sequence[str],
    title: str,
    *,
    label_levels: Sequence[str] = ("0", "1"),
) -> bytes:
    """A grid of (rows, columns, C, H, W) images in [0, 1], each captioned with its label
    (-1: an empty cell). One or three channels are shown as they are; other counts as the
    mean of the channels, in grey. One canvas for all cells keeps drawing fast."""
    rows, columns = images.shape[:2]
    height, width = images.shape[-2:]
    cell_height, cell_width = height + _GAP, width + _GAP
    canvas = np.ones((rows * cell_height + _GAP, columns * cell_width + _GAP, 3))
    for row in range(rows):
        for column in range(columns):
            if labels[row, column] >= 0:
                top, left = _GAP + row * cell_height, _GAP + column * cell_width
                canvas[top : top + height, left : left + width] = _displayable(images[row, column])
    figure = Figure(figsize=(columns * _CELL_INCHES + 1.2, rows * _CELL_INCHES + 0.6))
    figure.patch.set_facecolor("white")
    axes = figure.add_axes((0.12, 0.05, 0.86, 0.8))
    axes.imshow(canvas, interpolation="nearest")
    axes.set_title(title, fontsize=8)
    axes.set_xticks([])
    axes.set_yticks(
        [_GAP + row * cell_height + height / 2 for row in range(rows)], list(row_names), fontsize=7
    )
    for spine in axes.spines.values():
        spine.set_visible(False)
    for row in range(rows):
        for column in range(columns):
            if labels[row, column] >= 0:
                axes.text(
                    _GAP + column * cell_width + width / 2,
                    (row + 1) * cell_height + _GAP / 2 - 0.1,
                    str(label_levels[int(labels[row, column])]),
                    fontsize=6,
                    ha="center",
                    va="top",
                )
    return to_png(figure)


def _displayable(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB values in [0, 1] from a (C, H, W) image."""
    image = np.clip(image, 0.0, 1.0)
    if image.shape[0] != 3:
        image = np.repeat(image.mean(axis=0, keepdims=True), 3, axis=0)
    return np.transpose(image, (1, 2, 0))
