"""The validate stage: it stores and records the validated input, stops a table that fails
its spec, and refuses before training a row count that cannot fit in memory."""

from __future__ import annotations

import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.errors import ConfigError
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.tasks.validate import (
    FLOAT_BYTES,
    GENERATION_MEMORY_FACTOR,
    available_memory_bytes,
    check_generation_memory,
    encoded_row_width,
)

PER_ROW = 50 * FLOAT_BYTES * GENERATION_MEMORY_FACTOR


def test_the_row_width_counts_one_hots_sensitive_levels_and_the_label() -> None:
    german = bundled_dataset("german")
    frame = pl.read_parquet(german.data_path)
    spec = complete_spec(load_spec(german.spec_path), frame)
    categorical = sum(
        len(spec.columns[name].categories or ())
        for name in spec.feature_columns
        if spec.columns[name].type == "categorical"
    )
    numeric = len(spec.feature_columns) - sum(
        spec.columns[name].type == "categorical" for name in spec.feature_columns
    )
    # A value held by at least half of a numeric column's rows adds a two-level block:
    # German's existing_credits and people_liable are 1 for most applicants.
    spikes = sum(
        frame.get_column(name).value_counts(sort=True).get_column("count")[0] * 2 >= frame.height
        for name in spec.feature_columns
        if spec.columns[name].type != "categorical"
    )
    assert spikes == 2
    # German has no nulls: one number per numeric column; sex has two levels; one label.
    assert encoded_row_width(frame, spec) == categorical + numeric + 2 * spikes + 2 + 1


def test_rows_that_fit_pass_and_unknown_memory_is_not_a_refusal() -> None:
    check_generation_memory(1000, 50, available=1000 * PER_ROW)
    check_generation_memory(10**9, 50, available=None)


def test_rows_beyond_memory_are_refused_with_the_most_that_fits() -> None:
    with pytest.raises(ConfigError) as caught:
        check_generation_memory(1001, 50, available=1000 * PER_ROW)
    error = caught.value
    assert error.rule == "generate-rows-memory"
    assert "Generating 1,001 rows" in error.message and "50 encoded values per row" in error.message
    assert "at most 1,000 rows" in str(error.hint)


def test_available_memory_is_at_most_the_machine_memory() -> None:
    psutil = pytest.importorskip("psutil")
    available = available_memory_bytes()
    assert available is not None and 0 < available <= psutil.virtual_memory().total


# ------------------------------------------------------------------ the task itself


@pytest.mark.slow
def test_the_validated_input_is_stored_and_recorded(validated, stage_child_run) -> None:
    from fairdistill.tasks.services.stage_outputs import read_spec
    from fairdistill.tasks.services.storage import read_json, read_parquet

    assert validated.rows == read_parquet(validated.table).height == 1000
    spec = read_spec(validated.spec)
    assert spec.target.column == "credit_risk" and spec.sensitive_columns == ["sex"]
    assert read_json(validated.validation)["success"] is True
    run = stage_child_run("validate")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["failures"] == 0 and run.data.metrics["rows"] == 1000
    assert run.data.tags["input.sha256"] == validated.source.sha256


@pytest.mark.slow
def test_a_table_that_fails_its_spec_stops_here_and_fails_the_run(
    stage_context, stage_child_run, tmp_path
) -> None:
    import shutil

    import yaml

    from fairdistill.models.config import InputFiles
    from fairdistill.models.errors import DataValidationError
    from fairdistill.tasks.validate import input_fingerprint, validate

    german = bundled_dataset("german")
    spec = yaml.safe_load(german.spec_path.read_text(encoding="utf-8"))
    spec["min_rows"] = 5000
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    shutil.copy(german.data_path, tmp_path / "german.parquet")
    source = InputFiles(data_path=tmp_path / "german.parquet", spec_path=tmp_path / "spec.yaml")
    with pytest.raises(DataValidationError, match="at least 5000"):
        validate(source, None, stage_context, input_fingerprint(source))
    run = stage_child_run("validate")
    assert run.info.status == "FAILED"
    assert "5000" in run.data.tags["fairdistill.failure"]


def test_the_fingerprint_covers_the_spec_as_well_as_the_table(tmp_path) -> None:
    import shutil

    from fairdistill.models.config import InputFiles
    from fairdistill.tasks.validate import input_fingerprint

    german = bundled_dataset("german")
    shutil.copy(german.data_path, tmp_path / "german.parquet")
    shutil.copy(german.spec_path, tmp_path / "spec.yaml")
    source = InputFiles(data_path=tmp_path / "german.parquet", spec_path=tmp_path / "spec.yaml")
    before = input_fingerprint(source)
    with (tmp_path / "spec.yaml").open("a", encoding="utf-8") as spec:
        spec.write("\n# edited\n")
    assert input_fingerprint(source) not in (before, None)
    missing = InputFiles(data_path=tmp_path / "nothing.csv", spec_path=tmp_path / "spec.yaml")
    assert input_fingerprint(missing) is None
