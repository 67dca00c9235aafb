"""The seeded, stratified train/test split; the test part is never shown to a model."""

from __future__ import annotations

import numpy as np
import polars as pl


def stratified_split(
    frame: pl.DataFrame, strata: list[str], test_fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split so every (label, sensitive group) cell keeps its share in both parts.

    Stratifying on the sensitive groups as well as the label matters: a small group's
    positives could otherwise land almost all on one side and every fairness figure on
    the test set would be noise.
    """
    rng = np.random.default_rng(seed)
    keys = frame.select(
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("<null>") for c in strata], separator="|"
        )
    )
    codes = keys.to_series().to_numpy()
    test_mask = np.zeros(frame.height, dtype=bool)
    for value in np.unique(codes):
        members = np.flatnonzero(codes == value)
        rng.shuffle(members)
        test_count = round(len(members) * test_fraction)
        test_mask[members[:test_count]] = True
    return frame.filter(pl.Series(~test_mask)), frame.filter(pl.Series(test_mask))
