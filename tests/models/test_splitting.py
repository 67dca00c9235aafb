"""The seeded stratified split: every (label, group) cell keeps its share on both sides."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.models.splitting import stratified_split


def people(rows: int = 200) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": range(rows),
            "label": ["yes" if index % 4 == 0 else "no" for index in range(rows)],
            # A small group with a missing value among its members.
            "group": [
                None if index % 10 == 3 else ("b" if index % 10 < 2 else "a")
                for index in range(rows)
            ],
        }
    )


def cell_counts(frame: pl.DataFrame) -> dict[tuple[str | None, str | None], int]:
    counts = frame.group_by("label", "group").len()
    return {(label, group): count for label, group, count in counts.iter_rows()}


def test_each_cell_keeps_its_share_and_no_row_is_lost_or_repeated() -> None:
    frame = people()
    train, test = stratified_split(frame, ["label", "group"], 0.25, seed=0)
    ids = train.get_column("id").to_list() + test.get_column("id").to_list()
    assert sorted(ids) == list(range(frame.height))
    whole, held_out = cell_counts(frame), cell_counts(test)
    assert set(held_out) == set(whole)  # the missing group is a cell of its own
    for cell, count in whole.items():
        assert held_out[cell] == round(count * 0.25), cell


def test_the_split_depends_on_the_seed_alone() -> None:
    frame = people()
    first = stratified_split(frame, ["label", "group"], 0.25, seed=3)
    again = stratified_split(frame, ["label", "group"], 0.25, seed=3)
    other = stratified_split(frame, ["label", "group"], 0.25, seed=4)
    assert first[1].equals(again[1]) and first[0].equals(again[0])
    assert not first[1].equals(other[1])


def test_rows_keep_their_order_on_both_sides() -> None:
    train, test = stratified_split(people(), ["label"], 0.3, seed=1)
    for part in (train, test):
        assert part.get_column("id").is_sorted()


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 0), (1.0, 200)])
def test_the_extreme_fractions_put_every_row_on_one_side(fraction: float, expected: int) -> None:
    _, test = stratified_split(people(), ["label", "group"], fraction, seed=0)
    assert test.height == expected
