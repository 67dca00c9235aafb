"""The generate stage: the asked rows, decodable like the input, from a stored prior; and
transform mode, one row per training row and no prior."""

from __future__ import annotations

import pytest

from fairdistill.models.config import GenerateConfig
from fairdistill.tasks.generate import generate
from fairdistill.tasks.services.model_store import load_arrays_from
from fairdistill.tasks.services.storage import read_parquet

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_sampled_rows_come_from_a_stored_prior(validated, synthetic, stage_child_run) -> None:
    frame = read_parquet(synthetic.table)
    assert frame.height == synthetic.rows == 300
    assert set(frame.columns) == set(read_parquet(validated.table).columns)
    assert synthetic.prior is not None
    arrays, metadata = load_arrays_from(synthetic.prior)
    assert metadata == {"kind": "prior"} and arrays
    run = stage_child_run("generate")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 300
    assert 0.0 < run.data.metrics["synthetic_positive_rate"] < 1.0


def test_transform_mode_gives_one_row_per_training_row(
    stage_context, prepared, trained_teacher, trained_student
) -> None:
    # A work folder of its own: the chain's synthetic.parquet stays the sampled one.
    context = stage_context.model_copy(update={"work_uri": f"{stage_context.work_uri}-transform"})
    settings = GenerateConfig(mode="transform")
    transformed = generate(settings, 0, context, prepared, trained_teacher, trained_student)
    assert transformed.prior is None
    assert transformed.rows == prepared.train_rows
