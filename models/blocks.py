"""The encoded form of a table that every model in fairdistill works on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class FeatureBlock:
    """A slice of the encoded feature matrix that stands for one source column.

    ``categorical`` blocks are one-hot (``width`` levels, a null level included when the
    column is nullable); ``continuous`` blocks hold one normal score (``width`` 1).
    """

    column: str
    kind: Literal["categorical", "continuous"]
    start: int
    width: int

    @property
    def stop(self) -> int:
        return self.start + self.width


@dataclass(frozen=True)
class EncodedTable:
    """A table in model space: features, sensitive levels and the binary label."""

    features: np.ndarray  # float32 (n, d): the feature blocks side by side
    sensitive: np.ndarray  # int64 (n, k): level index of each sensitive attribute
    label: np.ndarray  # int64 (n,): 1 for the positive (favourable) label

    def __len__(self) -> int:
        return int(self.label.shape[0])


def one_hot_sensitive(sensitive: np.ndarray, levels: list[int]) -> np.ndarray:
    """One-hot each sensitive attribute and put them side by side (float32)."""
    parts = [
        np.eye(count, dtype=np.float32)[sensitive[:, index]] for index, count in enumerate(levels)
    ]
    return np.concatenate(parts, axis=1)
