"""Reading a run's configuration at the edge: a YAML file, then command-line overrides.

The merged values are validated once into a :class:`~fairdistill.models.config.RunConfig`;
a value that does not validate becomes one :class:`ConfigError` naming what the user typed:
the command-line option (``--rows``) when the value came from one, else the field and the
file it came from. Reading and merging need nothing heavy (the run configuration imports
the model code): the command line reads the input's paths from the merged values first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from fairdistill.models.errors import ConfigError
from fairdistill.models.schema_problems import SchemaProblem, first_problem

if TYPE_CHECKING:
    from fairdistill.models.config import RunConfig

SCHEMA_HINT = "run 'fairdistill config-schema' to see every field and its allowed values"


def build_config(
    values: dict[str, Any],
    *,
    source: str | None = None,
    options: Mapping[str, str] | None = None,
) -> RunConfig:
    """Validate ``values``; ``source`` names the config file they came from, if any, and
    ``options`` the command-line option (``--rows``) behind each dotted field
    (``generate.rows``) the command line set."""
    from fairdistill.models.config import RunConfig

    try:
        return RunConfig.model_validate(values)
    except ValidationError as error:
        problem = first_problem(error, RunConfig)
        option = (options or {}).get(problem.where)
        if problem.kind == "unknown":
            raise _unknown_key_error(problem, None if option else source) from error
        if option is not None:
            raise _option_error(option, problem) from error
        raise _config_error(problem, source) from error


def _option_error(option: str, problem: SchemaProblem) -> ConfigError:
    requirement = problem.message.replace("Input should be", "it must be", 1)
    return ConfigError(
        f"The option {option}{_shown(problem.value, ' ')} is refused: {requirement}",
        rule="option-value",
        hint=f"give {option} an allowed value; 'fairdistill run --help' describes every option",
    )


def _unknown_key_error(problem: SchemaProblem, source: str | None) -> ConfigError:
    guess = f" (did you mean '{problem.suggestion}'?)" if problem.suggestion else ""
    return ConfigError(
        f"Unknown run configuration key '{problem.where}'{guess}",
        file=source,
        rule="config-unknown-key",
        hint=f"rename '{problem.leaf}' to '{problem.suggestion}'"
        if problem.suggestion
        else f"remove '{problem.leaf}'; {SCHEMA_HINT}",
    )


def _config_error(problem: SchemaProblem, source: str | None) -> ConfigError:
    where = f"'{problem.where}'{_shown(problem.value, ' = ')}: " if problem.where else ""
    return ConfigError(
        f"Invalid run configuration: {where}{problem.message}",
        file=source,
        rule="config-schema",
        hint=SCHEMA_HINT,
    )


def _shown(value: object, prefix: str) -> str:
    return f"{prefix}{value!r}" if isinstance(value, str | int | float | bool) else ""


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "The config file does not exist",
            file=str(path),
            rule="config-exists",
            hint="check the path given to --config",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"The config file is not valid YAML: {str(error).splitlines()[0]}",
            file=str(path),
            rule="config-yaml",
            hint="fix the YAML syntax",
        ) from error
    if not isinstance(raw, dict):
        raise ConfigError(
            "The config file must be a YAML mapping of option names to values",
            file=str(path),
            rule="config-shape",
            hint="see 'fairdistill config-schema'",
        )
    return raw


def merge_overrides(
    base: dict[str, Any], overrides: dict[str, Any], *, keep_none: bool = False
) -> dict[str, Any]:
    """Merge dotted CLI overrides (``teacher.epochs``) into a nested config mapping.

    An override of None means "not given" and is skipped, unless ``keep_none`` (``--set
    gates.min_utility_ratio=null`` switches a gate off).
    """
    merged = _copy(base)
    for dotted, value in overrides.items():
        if value is None and not keep_none:
            continue
        target: Any = merged
        *parents, leaf = dotted.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                break  # the file's value there is no mapping: validation names it
        else:
            target[leaf] = value
    return merged


def _copy(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _copy(value) if isinstance(value, dict) else value for key, value in values.items()
    }


def parse_assignments(texts: list[str]) -> dict[str, Any]:
    """``["gates.min_utility_ratio=0.7"]`` as ``{"gates.min_utility_ratio": 0.7}``; each value
    is read as YAML (``null``, ``0.7``, ``true``, ``[a, b]``)."""
    found: dict[str, Any] = {}
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key.strip() or any(not part for part in key.strip().split(".")):
            raise ConfigError(
                f"The option --set {text!r} is refused: it must be KEY=VALUE",
                rule="option-value",
                hint="write --set gates.min_utility_ratio=0.7; 'fairdistill config-schema' "
                "lists every key",
            )
        try:
            found[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            found[key.strip()] = value
    return found
