"""The codec of image tables: one float column per pixel, scaled to [0, 1] for the models.

An image dataset is a table with the label, the sensitive attributes and one column per
channel and pixel (named by the spec's :class:`~fairdistill.models.spec.ImageSpec`). The
features of its :class:`EncodedTable` are the pixels in C x H x W order, scaled from the
spec's pixel range to [0, 1]; the label and the sensitive attributes are encoded exactly as
for a table, by a :class:`TabularCodec` without feature columns. The codec's state is plain
JSON, like the tabular codec's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from fairdistill.models.blocks import EncodedTable, FeatureBlock
from fairdistill.models.codec import TabularCodec
from fairdistill.models.errors import CheckpointError, DataValidationError, SpecError
from fairdistill.models.spec import DatasetSpec, ImageSpec

IMAGE_CODEC_FORMAT = "fairdistill.image-codec"
IMAGE_CODEC_VERSION = 1


class ImageCodec:
    """Encode an image table to :class:`EncodedTable` and decode model output back to one."""

    def __init__(
        self, *, columns_out: list[str], attributes: TabularCodec, image: ImageSpec
    ) -> None:
        if attributes.feature_dim:
            raise ValueError("the attribute codec of an image codec must have no feature columns")
        self.columns_out = list(columns_out)
        self.attributes = attributes
        self.image = image
        self.pixel_columns = image.pixel_columns
        self.feature_dim = len(self.pixel_columns)
        # Every pixel is a continuous column of its own, which is what it is for the models.
        self.blocks = [
            FeatureBlock(name, "continuous", index, 1)
            for index, name in enumerate(self.pixel_columns)
        ]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.image.shape

    @property
    def target_column(self) -> str:
        return self.attributes.target_column

    @property
    def label_levels(self) -> tuple[str, str]:
        return self.attributes.label_levels

    @property
    def sensitive_columns(self) -> list[str]:
        return self.attributes.sensitive_columns

    @property
    def sensitive_levels(self) -> list[tuple[str, ...]]:
        return self.attributes.sensitive_levels

    @property
    def sensitive_level_counts(self) -> list[int]:
        return self.attributes.sensitive_level_counts

    @property
    def feature_columns(self) -> list[str]:
        return list(self.pixel_columns)

    @classmethod
    def fit(cls, frame: pl.DataFrame, spec: DatasetSpec) -> ImageCodec:
        """Learn the label and sensitive levels from the training frame; ``spec`` is complete."""
        if spec.image is None:
            raise SpecError(
                "An image codec needs the spec's 'image' section",
                rule="codec-image-spec",
                hint="set modality: image and image: {channels, height, width} in the spec",
            )
        pixels = set(spec.image.pixel_columns)
        others = [name for name in spec.feature_columns if name not in pixels]
        if others:
            raise SpecError(
                f"An image dataset models only its pixels, but the spec makes "
                f"{len(others)} other columns features: {others[:5]}",
                column=others[0],
                rule="codec-image-features",
                hint="give those columns role: ignore in the spec, or drop them from the data",
            )
        _require_pixels(frame, spec.image.pixel_columns)
        attributes = TabularCodec.fit(
            frame, spec.model_copy(update={"columns": {}, "constraints": ()})
        )
        modelled = {spec.target.column, *spec.sensitive_columns, *pixels}
        columns_out = [name for name in frame.columns if name in modelled]
        return cls(columns_out=columns_out, attributes=attributes, image=spec.image)

    def encode(self, frame: pl.DataFrame, *, with_label: bool = True) -> EncodedTable:
        """Encode ``frame``; rows encoded without a label carry the label -1, never a class."""
        _require_pixels(frame, self.pixel_columns)
        attributes = self.attributes.encode(frame, with_label=with_label)
        return EncodedTable(
            features=self._scaled_pixels(frame),
            sensitive=attributes.sensitive,
            label=attributes.label,
        )

    def _scaled_pixels(self, frame: pl.DataFrame) -> np.ndarray:
        values = frame.select(self.pixel_columns).to_numpy().astype(np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            column = self.pixel_columns[int(np.flatnonzero(bad.any(axis=0))[0])]
            raise DataValidationError(
                f"{int(bad.any(axis=1).sum())} images have missing or non-finite pixels",
                column=column,
                rule="codec-image-pixels",
                hint="every pixel of every image needs a value",
            )
        low, high = self.image.min_value, self.image.max_value
        return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)

    def decode(
        self, features: np.ndarray, sensitive: np.ndarray, label: np.ndarray
    ) -> pl.DataFrame:
        """Turn model output back into an image table with the training frame's columns.

        Pixels are clipped to [0, 1] and mapped back to the spec's pixel range (float32).
        """
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"features must have shape (n, {self.feature_dim}), got {features.shape}"
            )
        empty = np.zeros((features.shape[0], 0), dtype=np.float32)
        attributes = self.attributes.decode(empty, sensitive, label)
        low, high = self.image.min_value, self.image.max_value
        values = (low + np.clip(features, 0.0, 1.0) * (high - low)).astype(np.float32)
        pixels = pl.DataFrame(values, schema=self.pixel_columns, orient="row")
        return attributes.hstack(pixels).select(self.columns_out)

    def images(self, table: EncodedTable) -> np.ndarray:
        """The encoded rows as an (n, C, H, W) array of values in [0, 1]."""
        return table.features.reshape(len(table), *self.shape)

    def to_dict(self) -> dict[str, Any]:
        """The codec as plain JSON-ready values; :meth:`from_dict` restores it exactly."""
        return {
            "format": IMAGE_CODEC_FORMAT,
            "version": IMAGE_CODEC_VERSION,
            "columns_out": list(self.columns_out),
            "attributes": self.attributes.to_dict(),
            "image": self.image.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ImageCodec:
        if state.get("format") != IMAGE_CODEC_FORMAT or state.get("version") != IMAGE_CODEC_VERSION:
            raise CheckpointError(
                f"Not a stored image codec of version {IMAGE_CODEC_VERSION} (format "
                f"{state.get('format')!r}, version {state.get('version')!r})",
                rule="codec-format",
                hint="re-run the prepare stage to store the codec with this version",
            )
        return cls(
            columns_out=list(state["columns_out"]),
            attributes=TabularCodec.from_dict(state["attributes"]),
            image=ImageSpec.model_validate(state["image"]),
        )


def _require_pixels(frame: pl.DataFrame, columns: list[str]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The table lacks {len(missing)} of its {len(columns)} pixel columns "
            f"(e.g. {', '.join(missing[:3])})",
            column=missing[0],
            rule="codec-columns-exist",
            hint="the pixel columns are named by the spec's image section: check column_prefix, "
            "channels, height and width against the data",
        )
