"""Where a run's input comes from, and reading it: the table and the spec that describes it.

Kept apart from :mod:`fairdistill.models.config` (which imports the model code, and with it
PyTorch) so the command line can read and check an input in about a second, before it
starts anything heavier.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from fairdistill.data import BUNDLED_DATASETS, bundled_dataset
from fairdistill.models.errors import ConfigError
from fairdistill.models.spec import DatasetSpec, load_spec
from fairdistill.models.tables import read_table

SEPARATOR_DESCRIPTION = (
    "The column separator of a CSV data file, one character (e.g. ';'); default: the "
    "spec's separator, else the one the file's header shows (comma, semicolon, tab or '|')."
)


class InputFiles(BaseModel):
    """The table a run reads, the spec that describes it and how to split its lines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_path: Path
    spec_path: Path
    separator: str | None = Field(default=None, description=SEPARATOR_DESCRIPTION)


def resolve_input(
    dataset: str | None,
    data: str | Path | None,
    spec: str | Path | None,
    separator: str | None = None,
) -> InputFiles:
    """The user's table and spec when given, else the files of the bundled ``dataset``."""
    if data is not None:
        if spec is None:
            raise ConfigError(
                "A data file needs its spec",
                file=str(data),
                rule="data-needs-spec",
                hint="pass --spec; write one with 'fairdistill inspect DATA' and edit it",
            )
        return InputFiles(
            data_path=Path(data).resolve(), spec_path=Path(spec).resolve(), separator=separator
        )
    if dataset not in BUNDLED_DATASETS:
        raise ConfigError(
            f"There is no bundled dataset named '{dataset}' "
            f"(available: {', '.join(BUNDLED_DATASETS)})",
            rule="bundled-dataset-exists",
            hint=f"use one of {', '.join(BUNDLED_DATASETS)}, or pass the path of your own "
            "parquet or CSV file with its spec",
        )
    bundled = bundled_dataset(dataset)
    return InputFiles(data_path=bundled.data_path, spec_path=bundled.spec_path)


def read_input(source: InputFiles) -> tuple[pl.DataFrame, DatasetSpec]:
    """The spec, then the table read as the spec (or the command line) says.

    The spec comes first because it may name the table's separator; a separator given with
    the run wins over the spec's.
    """
    spec = load_spec(source.spec_path)
    frame = read_table(source.data_path, separator=source.separator or spec.separator)
    return frame, spec
