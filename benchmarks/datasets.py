"""The cases of the fairness benchmark: which table, with which spec, audits which attribute.

Adult and German are bundled with fairdistill. ``adult_plain`` is the bundled Adult table as
a new user might bring it: without ``fnlwgt`` (a sampling weight, not a property of the
person), every row with a missing value dropped (45,222 rows), and a minimal spec naming
only the target and the sensitive attribute, so every column type is inferred. It is
derived in code from the bundled file, not stored. COMPAS is not: ProPublica publishes it without
a licence to redistribute, so it is read where it lies, from
``<repository>/../shared/datasets/compas/compas-scores-two-years.csv`` or from the path in the
``FAIRDISTILL_COMPAS_CSV`` environment variable, and never copied into the repository. A case
whose file is absent is skipped with a message that says how to get the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from fairdistill.data import bundled_dataset
from fairdistill.models.spec import DatasetSpec, complete_spec, load_spec
from fairdistill.models.tables import read_table

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
SPEC_DIR = BENCHMARKS_DIR / "specs"

COMPAS_CSV_VARIABLE = "FAIRDISTILL_COMPAS_CSV"
COMPAS_FILE_NAME = "compas-scores-two-years.csv"
COMPAS_DEFAULT_PATH = REPO_ROOT.parent / "shared" / "datasets" / "compas" / COMPAS_FILE_NAME
COMPAS_REPOSITORY = "https://github.com/propublica/compas-analysis"


@dataclass(frozen=True)
class BenchmarkCase:
    """One table audited for one sensitive attribute."""

    name: str
    dataset: str
    sensitive: str
    data_path: Path
    spec_path: Path
    # Applied to the table read from data_path before the spec is completed.
    derive: Callable[[pl.DataFrame], pl.DataFrame] | None = None


def plain_adult(frame: pl.DataFrame) -> pl.DataFrame:
    """Adult without ``fnlwgt`` and without the rows that have a missing value."""
    return frame.drop("fnlwgt").drop_nulls()


def compas_csv_path() -> Path:
    """Where the COMPAS file is read from: the environment variable, else the shared folder."""
    configured = os.environ.get(COMPAS_CSV_VARIABLE)
    return Path(configured).expanduser() if configured else COMPAS_DEFAULT_PATH


def benchmark_cases() -> dict[str, BenchmarkCase]:
    """Every case by name, whether or not its file is present (see :func:`available_cases`)."""
    adult = bundled_dataset("adult").data_path
    german = bundled_dataset("german").data_path
    cases = [
        BenchmarkCase("adult_sex", "adult", "sex", adult, SPEC_DIR / "adult_sex.yaml"),
        BenchmarkCase("adult_race", "adult", "race", adult, SPEC_DIR / "adult_race.yaml"),
        BenchmarkCase(
            "adult_plain", "adult", "sex", adult, SPEC_DIR / "adult_plain.yaml", plain_adult
        ),
        BenchmarkCase("german_sex", "german", "sex", german, SPEC_DIR / "german_sex.yaml"),
        BenchmarkCase("compas_race", "compas", "race", compas_csv_path(), SPEC_DIR / "compas.yaml"),
    ]
    return {case.name: case for case in cases}


BENCHMARK_CASES: dict[str, BenchmarkCase] = benchmark_cases()


def available_cases() -> tuple[dict[str, BenchmarkCase], dict[str, str]]:
    """The cases whose data file is present, and for each other one why it is skipped."""
    present: dict[str, BenchmarkCase] = {}
    skipped: dict[str, str] = {}
    for name, case in benchmark_cases().items():
        if case.data_path.is_file():
            present[name] = case
        else:
            skipped[name] = _missing_file_message(case)
    return present, skipped


def load_case(case: BenchmarkCase) -> tuple[pl.DataFrame, DatasetSpec]:
    """The case's table and its spec, completed from the table."""
    frame = read_table(case.data_path)
    if case.derive is not None:
        frame = case.derive(frame)
    spec = complete_spec(load_spec(case.spec_path), frame, source=str(case.data_path))
    return frame, spec


def _missing_file_message(case: BenchmarkCase) -> str:
    if case.dataset != "compas":
        return (
            f"{case.data_path} is missing: the bundled {case.dataset} dataset is part of "
            "fairdistill; reinstall it or rebuild it with data/build_datasets.py"
        )
    where = (
        f"{COMPAS_CSV_VARIABLE}={os.environ[COMPAS_CSV_VARIABLE]}"
        if os.environ.get(COMPAS_CSV_VARIABLE)
        else str(case.data_path)
    )
    return (
        f"the COMPAS file is not at {where}: download {COMPAS_FILE_NAME} from ProPublica's "
        f"compas-analysis repository ({COMPAS_REPOSITORY}) and put it at "
        f"{COMPAS_DEFAULT_PATH}, or set {COMPAS_CSV_VARIABLE} to its path; fairdistill does "
        "not redistribute it"
    )
