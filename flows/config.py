"""Reading a run's configuration at the edge: a YAML file, then command-line overrides.

The merged values are validated once into a :class:`~fairdistill.models.config.RunConfig`;
a value that does not validate becomes one :class:`ConfigError` naming the field and the
file it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fairdistill.models.config import RunConfig
from fairdistill.models.errors import ConfigError


def _describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:
        return message
    where = ".".join(str(part) for part in first["loc"])
    value = first.get("input")
    shown = f" = {value!r}" if isinstance(value, str | int | float | bool) else ""
    return f"'{where}'{shown}: {message}"


def build_config(values: dict[str, Any], *, source: str | None = None) -> RunConfig:
    """Validate ``values``; ``source`` names the config file they came from, if any."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(
            f"Invalid run configuration: {_describe_validation_error(error)}",
            file=source,
            rule="config-schema",
            hint="run 'fairdistill config-schema' to see every field and its allowed values",
        ) from error


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


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge dotted CLI overrides (``teacher.epochs``) into a nested config mapping."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for dotted, value in overrides.items():
        if value is None:
            continue
        target = merged
        *parents, leaf = dotted.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return merged
