"""The train/test split, seeded and stratified or the data's own; no model sees the test rows."""

from __future__ import annotations

import numpy as np
import polars as pl

from fairdistill.models.errors import DataValidationError
from fairdistill.models.spec import SPLIT_TEST, SPLIT_TRAIN, DatasetSpec


def split_table(
    frame: pl.DataFrame, spec: DatasetSpec, test_fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's train and test parts: the data's own split when the spec names a split
    column, else a seeded split stratified on the label and every sensitive attribute."""
    if spec.split_column:
        return declared_split(frame, spec.split_column)
    return stratified_split(frame, split_strata(spec), test_fraction, seed)


def split_strata(spec: DatasetSpec) -> list[str]:
    """The columns whose combinations keep their shares on both sides of the split."""
    return [spec.target.column, *spec.sensitive_columns]


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


def declared_split(frame: pl.DataFrame, column: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The data's own split: rows marked ``train`` and rows marked ``test`` in ``column``.

    Some datasets are built with a test set that differs from the training set on purpose
    (a bias present in training and absent in test); a random split would erase that.
    """
    values = frame.get_column(column).cast(pl.String)
    allowed = [SPLIT_TRAIN, SPLIT_TEST]
    unexpected = values.filter(~values.is_in(allowed) | values.is_null())
    if unexpected.len():
        examples = ", ".join(repr(value) for value in unexpected.unique().head(3).to_list())
        raise DataValidationError(
            f"The split column holds {unexpected.len()} values other than "
            f"'{SPLIT_TRAIN}' and '{SPLIT_TEST}' (e.g. {examples})",
            column=column,
            rule="split-values",
            hint=f"mark every row '{SPLIT_TRAIN}' or '{SPLIT_TEST}', or remove split_column "
            "from the spec to split at random",
        )
    is_test = (values == SPLIT_TEST).to_numpy()
    for name, count in ((SPLIT_TRAIN, int((~is_test).sum())), (SPLIT_TEST, int(is_test.sum()))):
        if count == 0:
            raise DataValidationError(
                f"No row is marked '{name}' in the split column",
                column=column,
                rule="split-values",
                hint="both parts of the split need rows",
            )
    mask = pl.Series(is_test)
    return frame.filter(~mask), frame.filter(mask)
