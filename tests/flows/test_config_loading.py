"""Reading a run's configuration at the edge: YAML file, command-line overrides, one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairdistill.flows.config import build_config, load_config_file, merge_overrides
from fairdistill.models.errors import ConfigError


def test_options_override_the_file_and_the_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 3\nteacher:\n  epochs: 7\n  beta: 2.0\n", encoding="utf-8")
    merged = merge_overrides(load_config_file(path), {"teacher.beta": 4.0, "seed": None})
    config = build_config(merged, source=str(path))
    assert (config.seed, config.teacher.epochs, config.teacher.beta) == (3, 7, 4.0)
    assert config.student == type(config.student)()


def test_merging_never_changes_the_given_mappings() -> None:
    base = {"teacher": {"epochs": 2}}
    merged = merge_overrides(base, {"teacher.beta": 1.0, "generate.rows": 5})
    assert base == {"teacher": {"epochs": 2}}
    assert merged == {"teacher": {"epochs": 2, "beta": 1.0}, "generate": {"rows": 5}}


def test_a_bad_value_is_one_error_naming_the_field_and_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"teacher": {"epochs": 0}}, source="run.yaml")
    error = caught.value
    assert "'teacher.epochs' = 0" in error.message and error.file == "run.yaml"
    assert error.rule == "config-schema" and "config-schema" in str(error.hint)


@pytest.mark.parametrize(
    ("content", "rule"),
    [(None, "config-exists"), ("seed: [1\n", "config-yaml"), ("- 1\n- 2\n", "config-shape")],
)
def test_an_unreadable_file_is_one_error(tmp_path: Path, content: str | None, rule: str) -> None:
    path = tmp_path / "run.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert caught.value.rule == rule and caught.value.file == str(path)


def test_an_empty_file_is_no_settings(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config_file(path) == {}
