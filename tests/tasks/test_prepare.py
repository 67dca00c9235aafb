"""The prepare stage: a seeded split whose parts cover the input once, and the codec."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.models.modality import codec_from_dict
from fairdistill.tasks.services.storage import read_json, read_parquet

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_the_parts_cover_the_input_once_and_the_codec_fits_train(
    validated, prepared, stage_child_run
) -> None:
    train, test = read_parquet(prepared.train), read_parquet(prepared.test)
    assert (train.height, test.height) == (prepared.train_rows, prepared.test_rows)
    assert train.height + test.height == validated.rows
    assert test.height == round(validated.rows * 0.2)
    whole = pl.concat([train, test]).sort(pl.all())
    assert whole.equals(read_parquet(validated.table).sort(pl.all()))
    codec = codec_from_dict(read_json(prepared.codec))
    assert codec.encode(train).features.shape[0] == train.height
    assert prepared.spec == validated.spec
    run = stage_child_run("prepare")
    assert run.info.status == "FINISHED"
    assert run.data.params == {"test_fraction": "0.2", "seed": "0"}
    assert run.data.metrics["encoded_dim"] == codec.feature_dim
