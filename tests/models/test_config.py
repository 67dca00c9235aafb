"""The run configuration: defaults, what it refuses, bundled datasets' recommended settings,
where the input comes from, and the part each stage is handed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fairdistill.data import bundled_dataset, bundled_run_defaults
from fairdistill.models.config import (
    MAX_GENERATED_ROWS,
    InputFiles,
    RunConfig,
    fill_unset,
    resolve_input,
)
from fairdistill.models.errors import ConfigError


def test_the_defaults_run_the_bundled_adult_table() -> None:
    config = RunConfig()
    assert config.dataset == "adult" and config.dataset_label == "adult"
    assert config.input_files == InputFiles(
        data_path=bundled_dataset("adult").data_path,
        spec_path=bundled_dataset("adult").spec_path,
    )
    assert config.reuse_stages and config.register_model


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data": "loans.csv"}, "needs its spec"),
        ({"dataset": "nope"}, "no bundled dataset named 'nope'"),
        ({"dataset": None}, "name a bundled dataset"),
        ({"generate": {"rows": MAX_GENERATED_ROWS + 1}}, "less than or equal"),
        ({"run_name": "../escape"}, "should match pattern"),
        ({"teacher": {"beta": -1}}, "greater than or equal"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_refused_before_any_work(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(values)


def test_a_bundled_datasets_recommended_settings_fill_only_what_is_unset() -> None:
    recommended = bundled_run_defaults("coloured-digits")
    assert recommended, "coloured-digits ships a run.yaml"
    config = RunConfig.model_validate({"dataset": "coloured-digits"})
    assert config.teacher.epochs == recommended["teacher"]["epochs"]
    chosen = RunConfig.model_validate({"dataset": "coloured-digits", "teacher": {"epochs": 1}})
    assert chosen.teacher.epochs == 1
    own_data = RunConfig.model_validate(
        {"dataset": "coloured-digits", "data": "x.csv", "spec": "s"}
    )
    assert own_data.teacher.epochs == RunConfig().teacher.epochs


def test_fill_unset_merges_nested_mappings_without_overriding() -> None:
    merged = fill_unset({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 9}, "e": 4})
    assert merged == {"a": 1, "b": {"c": 9, "d": 3}, "e": 4}


def test_the_users_files_are_resolved_and_a_lone_table_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = resolve_input("adult", "in/../loans.csv", "spec.yaml")
    assert files.data_path == tmp_path.resolve() / "loans.csv"
    assert files.spec_path == tmp_path.resolve() / "spec.yaml"
    with pytest.raises(ConfigError) as caught:
        resolve_input(None, "loans.csv", None)
    assert caught.value.rule == "data-needs-spec" and caught.value.hint


def test_an_unknown_bundled_name_is_one_error_listing_the_available_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_input("compas", None, None)
    assert caught.value.rule == "bundled-dataset-exists"
    assert "adult" in caught.value.message and "german" in caught.value.message
    assert caught.value.hint


def test_only_sampling_checks_a_row_count_against_memory() -> None:
    assert RunConfig(generate={"rows": 10}).rows_to_sample == 10
    assert RunConfig(generate={"rows": 10, "mode": "transform"}).rows_to_sample is None
    assert RunConfig().rows_to_sample is None
