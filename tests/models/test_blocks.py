"""Feature blocks and the side-by-side one-hot of the sensitive attributes."""

from __future__ import annotations

import numpy as np

from fairdistill.models.blocks import EncodedTable, FeatureBlock, one_hot_sensitive


def test_a_block_stops_where_the_next_one_starts() -> None:
    first = FeatureBlock("job", "categorical", 0, 4)
    assert first.stop == 4
    assert FeatureBlock("age", "continuous", first.stop, 1).stop == 5


def test_each_attribute_is_one_hot_over_its_own_levels_side_by_side() -> None:
    sensitive = np.array([[0, 2], [1, 0]])
    one_hot = one_hot_sensitive(sensitive, [2, 3])
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot, [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]])


def test_a_table_counts_its_rows_by_label() -> None:
    table = EncodedTable(
        features=np.zeros((3, 2), dtype=np.float32),
        sensitive=np.zeros((3, 1), dtype=np.int64),
        label=np.array([0, 1, 1]),
    )
    assert len(table) == 3
