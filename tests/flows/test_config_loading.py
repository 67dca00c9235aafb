"""Reading a run's configuration at the edge: YAML file, command-line overrides, one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairdistill.flows.config import (
    build_config,
    load_config_file,
    merge_overrides,
    parse_assignments,
)
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


@pytest.mark.parametrize(
    ("values", "option", "requirement"),
    [
        ({"generate": {"rows": 0}}, "--rows 0", "it must be greater than or equal to 1"),
        ({"teacher": {"beta": -1.0}}, "--beta -1.0", "it must be greater than or equal to 0"),
        ({"generate": {"mode": "magic"}}, "--mode 'magic'", "it must be 'sample' or 'transform'"),
    ],
)
def test_a_bad_option_is_blamed_on_the_option(values: dict, option: str, requirement: str) -> None:
    """``--rows 0`` names ``--rows``, not ``generate.rows`` of the file."""
    flag = option.split()[0]
    dotted = next(f"{key}.{leaf}" for key, inner in values.items() for leaf in inner)
    with pytest.raises(ConfigError) as caught:
        build_config(values, source="run.yaml", options={dotted: flag})
    error = caught.value
    assert error.message == f"The option {option} is refused: {requirement}"
    assert error.file is None and error.rule == "option-value" and flag in str(error.hint)
    assert dotted not in str(error)


def test_a_misspelt_config_key_names_the_closest_valid_one() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"teacher": {"epoch": 3}}, source="run.yaml")
    error = caught.value
    assert error.rule == "config-unknown-key" and error.file == "run.yaml"
    assert "'teacher.epoch' (did you mean 'epochs'?)" in error.message
    with pytest.raises(ConfigError) as caught:
        build_config({"gates": {"max_copy_rate": 0.1}}, options={"gates.max_copy_rate": "--set"})
    assert "did you mean 'max_exact_copy_rate'?" in caught.value.message
    assert caught.value.file is None


def test_set_takes_any_key_and_a_yaml_value() -> None:
    assignments = parse_assignments(
        [
            "gates.min_utility_ratio=null",
            "teacher.epochs=3",
            "evaluate.families=[gradient_boosting]",
        ]
    )
    assert assignments == {
        "gates.min_utility_ratio": None,
        "teacher.epochs": 3,
        "evaluate.families": ["gradient_boosting"],
    }
    merged = merge_overrides({"gates": {"min_utility_ratio": 0.8}}, assignments, keep_none=True)
    config = build_config(merged)
    assert config.gates.min_utility_ratio is None and config.teacher.epochs == 3
    for bad in ["gates", "=1", "gates.=1"]:
        with pytest.raises(ConfigError) as caught:
            parse_assignments([bad])
        assert caught.value.rule == "option-value" and "KEY=VALUE" in caught.value.message
