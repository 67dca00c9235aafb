"""Bad input meets the real ``fairdistill run``: one clear error, nothing written, run FAILED.

Two kinds of refusal:

- option and config errors (``--rows 0``, an unknown dataset, a config file that is not
  YAML) are refused before any work, as Prefect refuses bad parameters: no flow run and
  no MLflow run exist;
- data, spec and output errors are found inside the run: the MLflow run is marked FAILED
  with the reason in its ``fairdistill.failure`` tag.

Either way the command exits with code 2, prints exactly one ``error:`` line naming the
file, column and rule and saying what to do, prints no traceback, and leaves the output
location as it found it. Most cases run the command in this process against a shared
Prefect server; a few run it as a real subprocess.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

# Imported here so Prefect binds its console to the real stderr, not to a CliRunner stream.
import fairdistill.flows.regenerate  # noqa: F401
from fairdistill.flows.cli import app
from fairdistill.flows.settings import load_settings
from fairdistill.models.codec import TabularCodec
from fairdistill.models.spec import complete_spec, load_spec

pytestmark = pytest.mark.slow

ROWS = 300
SPEC = {
    "name": "loans",
    "target": {"column": "approved", "positive": "yes"},
    "sensitive": [{"column": "sex", "privileged": ["male"]}],
    "min_rows": 100,
    "min_group_rows": 20,
}


def loans(rows: int = ROWS, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "sex": rng.choice(["female", "male"], rows),
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(3000.0, 800.0, rows).round(2),
            "purpose": rng.choice(["car", "house", "education"], rows),
            "approved": rng.choice(["yes", "no"], rows),
        }
    )


@dataclass(frozen=True)
class Inputs:
    """What a case hands the command, and the file its error must name."""

    arguments: list[str]
    names_file: Path | str | None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Inputs]
    rule: str
    column: str | None = None
    in_run: bool = True  # found inside a run (MLflow run FAILED), or refused before one


def write_spec(folder: Path, **changes: object) -> Path:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}), encoding="utf-8")
    return path


def with_data(folder: Path, data: Path, spec: Path | None = None) -> list[str]:
    return ["--data", str(data), "--spec", str(spec or write_spec(folder))]


def csv_case(frame: pl.DataFrame, **spec_changes: object) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / "loans.csv"
        frame.write_csv(data)
        return Inputs(with_data(folder, data, write_spec(folder, **spec_changes)), data)

    return build


def parquet_case(frame: pl.DataFrame) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / "loans.parquet"
        frame.write_parquet(data)
        return Inputs(with_data(folder, data), data)

    return build


def raw_case(name: str, content: bytes) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / name
        data.write_bytes(content)
        return Inputs(with_data(folder, data), data)

    return build


def missing_file(folder: Path) -> Inputs:
    return Inputs(with_data(folder, folder / "nowhere.csv"), folder / "nowhere.csv")


def spec_text_case(text: str) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / "loans.csv"
        loans().write_csv(data)
        spec = folder / "spec.yaml"
        spec.write_text(text, encoding="utf-8")
        return Inputs(with_data(folder, data, spec), spec)

    return build


def options_case(*arguments: str) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / "loans.csv"
        loans().write_csv(data)
        return Inputs([*with_data(folder, data), *arguments], None)

    return build


def output_case(output: Callable[[Path], Path]) -> Callable[[Path], Inputs]:
    def build(folder: Path) -> Inputs:
        data = folder / "loans.csv"
        loans().write_csv(data)
        where = output(folder)
        return Inputs([*with_data(folder, data), "--output", str(where)], where)

    return build


def under_a_file(folder: Path) -> Path:
    (folder / "afile").write_text("not a folder\n")
    return folder / "afile" / "sub"


def wide_loans(folder: Path) -> Inputs:
    """2,000 categories one-hot: 49 million generated rows would need petabytes."""
    frame = loans(4000).with_columns(
        pl.Series("branch", [f"b{i % 2000:04d}" for i in range(4000)]).shuffle(seed=1)
    )
    data = folder / "wide.parquet"
    frame.write_parquet(data)
    spec = write_spec(folder, columns={"branch": {"type": "categorical"}})
    return Inputs([*with_data(folder, data, spec), "--rows", "49000000"], None)


def replace(frame: pl.DataFrame, column: str, values: list[object]) -> pl.DataFrame:
    return frame.with_columns(pl.Series(column, values, strict=False))


def some_rows(frame: pl.DataFrame, column: str, value: object, count: int) -> pl.DataFrame:
    values = frame.get_column(column).to_list()
    values[:count] = [value] * count
    return replace(frame, column, values)


BASE = loans()
LATIN1 = "sex,age,income,purpose,approved\n" + "female,30,1.0,café,yes\n" * 150

CASES = [
    Case("missing_file", missing_file, "input-exists"),
    Case("empty_file", raw_case("loans.csv", b""), "input-not-empty"),
    Case("header_only", raw_case("loans.csv", b"sex,age,approved\n"), "input-has-rows"),
    Case(
        "wrong_delimiter",
        raw_case("loans.csv", ("sex;age;approved\n" + "male;30;yes\n" * 150).encode()),
        "input-separator",
    ),
    Case("not_utf8", raw_case("loans.csv", LATIN1.encode("latin-1")), "input-utf8"),
    Case("corrupt_parquet", raw_case("loans.parquet", b"PAR1 not parquet"), "input-parquet"),
    Case("unsupported_format", raw_case("loans.xlsx", b"PK\x03\x04"), "input-format"),
    Case(
        "duplicated_columns",
        raw_case("loans.csv", b"sex,age,age,approved\n" + b"male,1,2,yes\n" * 150),
        "input-unique-columns",
        column="age",
    ),
    Case("malformed_yaml_spec", spec_text_case("name: loans\ntarget: [unclosed\n"), "spec-yaml"),
    Case(
        "spec_with_placeholders",
        spec_text_case(yaml.safe_dump({**SPEC, "target": {"column": "TODO", "positive": "yes"}})),
        "spec-todo",
    ),
    Case(
        "spec_names_unknown_column",
        csv_case(BASE, columns={"salary": {"type": "continuous"}}),
        "spec-columns-exist",
        column="salary",
    ),
    Case(
        "target_missing",
        csv_case(BASE.drop("approved")),
        "spec-columns-exist",
        column="approved",
    ),
    Case(
        "target_one_class",
        csv_case(replace(BASE, "approved", ["yes"] * ROWS)),
        "fairdistill.target_two_classes",
        column="approved",
    ),
    Case(
        "target_more_classes_than_spec",
        csv_case(
            some_rows(BASE, "approved", "maybe", 40),
            target={"column": "approved", "positive": "yes", "classes": ["yes", "no"]},
        ),
        "expect_column_values_to_be_in_set",
        column="approved",
    ),
    Case(
        "sensitive_missing",
        csv_case(BASE.drop("sex")),
        "spec-columns-exist",
        column="sex",
    ),
    Case(
        "sensitive_one_group",
        csv_case(replace(BASE, "sex", ["male"] * ROWS)),
        "fairdistill.sensitive_two_groups",
        column="sex",
    ),
    Case(
        "sensitive_group_of_three",
        csv_case(replace(BASE, "sex", ["female"] * 3 + ["male"] * (ROWS - 3))),
        "fairdistill.min_group_rows",
        column="sex",
    ),
    Case(
        "sensitive_with_nulls",
        csv_case(some_rows(BASE, "sex", None, 7)),
        "expect_column_values_to_not_be_null",
        column="sex",
    ),
    Case(
        "all_null_column",
        csv_case(BASE.with_columns(pl.lit(None, dtype=pl.String).alias("notes"))),
        "fairdistill.column_all_null",
        column="notes",
    ),
    Case(
        "numbers_mixed_with_text",
        csv_case(
            some_rows(BASE.with_columns(pl.col("age").cast(pl.String)), "age", "unknown", 9),
            columns={"age": {"type": "integer"}},
        ),
        "fairdistill.numeric_column_holds_text",
        column="age",
    ),
    Case(
        "inf_and_nan",
        parquet_case(
            some_rows(some_rows(BASE, "income", float("nan"), 4), "income", float("inf"), 2)
        ),
        "fairdistill.numeric_values_finite",
        column="income",
    ),
    Case("too_few_rows", csv_case(BASE.head(50)), "expect_table_row_count_to_be_between"),
    Case("rows_zero", options_case("--rows", "0"), "config-schema", in_run=False),
    Case("rows_negative", options_case("--rows", "-5"), "config-schema", in_run=False),
    Case("rows_absurd", options_case("--rows", "10000000000"), "config-schema", in_run=False),
    Case("rows_beyond_memory", wide_loans, "generate-rows-memory"),
    Case("output_under_a_file", output_case(under_a_file), "output-writable"),
    Case("output_in_proc", output_case(lambda _: Path("/proc/fairdistill-out")), "output-writable"),
    Case(
        "unknown_bundled_dataset",
        lambda _: Inputs(["--dataset", "nope"], None),
        "config-schema",
        in_run=False,
    ),
    Case(
        "data_without_spec",
        lambda folder: Inputs(["--data", str(folder / "x.csv")], None),
        "config-schema",
        in_run=False,
    ),
    Case(
        "config_not_yaml",
        lambda folder: Inputs(
            ["--config", str(write_text(folder / "run.yaml", "teacher: [1,\n"))],
            folder / "run.yaml",
        ),
        "config-yaml",
        in_run=False,
    ),
]
# Through a real subprocess of the command: an error inside a run, one refused before it
# (and, below, a missing file with --debug).
SUBPROCESS_CASES = {"empty_file", "rows_zero"}
BY_NAME = {case.name: case for case in CASES}


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    text: str  # everything the command printed, Prefect's console included


@dataclass(frozen=True)
class Prepared:
    inputs: Inputs
    output: Path
    run_name: str

    def command_line(self) -> list[str]:
        output = [] if "--output" in self.inputs.arguments else ["--output", str(self.output)]
        return ["run", *self.inputs.arguments, *output, "--run-name", self.run_name]


def prepare(case: Case, folder: Path) -> Prepared:
    folder.mkdir(parents=True, exist_ok=True)
    run_name = f"{case.name.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    return Prepared(case.build(folder), folder / "published", run_name)


def flow_runs_named(run_name: str) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`fairdistill.run_name` = '{run_name}'",
        output_format="list",
    )


def assert_refused(case: Case, prepared: Prepared, outcome: Outcome) -> None:
    assert outcome.exit_code == 2, outcome.text
    errors = [line for line in outcome.text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, outcome.text
    line = errors[0]
    assert f"rule {case.rule}" in line, line
    assert "what to do:" in line and line.endswith("."), line
    if case.column:
        assert f"column '{case.column}'" in line, line
    if prepared.inputs.names_file:
        assert str(prepared.inputs.names_file) in line, line
    assert "Traceback" not in outcome.text, outcome.text
    written = prepared.inputs.names_file if case.rule == "output-writable" else prepared.output
    assert not Path(written).exists()
    runs = flow_runs_named(prepared.run_name)
    if not case.in_run:
        assert runs == []
        return
    assert [run.info.status for run in runs] == ["FAILED"]
    assert case.rule in runs[0].data.tags["fairdistill.failure"]


# ---------------------------------------------------------------- in this process


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """Prefect's console output during the test, and its handlers restored afterwards."""
    from prefect.logging.handlers import PrefectConsoleHandler

    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    saved = [(h, h.console.file, h.formatter, list(h.filters)) for h in handlers]
    for handler in handlers:
        handler.console.file = buffer
    yield buffer
    for handler, stream, formatter, filters in saved:
        handler.console.file = stream
        handler.setFormatter(formatter)
        handler.filters[:] = filters


@pytest.fixture
def shared_server(prefect_api_url: str) -> Iterator[None]:
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_api_url}):
        yield
        # Send this test's logs while the server is certain to be up.
        APILogWorker.drain_all(timeout=10)


def run_in_process(arguments: list[str], console: io.StringIO) -> Outcome:
    result = CliRunner().invoke(app, arguments)
    return Outcome(result.exit_code, result.stdout + result.stderr + console.getvalue())


IN_PROCESS = [case for case in CASES if case.name not in SUBPROCESS_CASES]


@pytest.mark.parametrize("case", IN_PROCESS, ids=[case.name for case in IN_PROCESS])
@pytest.mark.usefixtures("shared_server")
def test_refused_in_process(case: Case, tmp_path: Path, console: io.StringIO) -> None:
    prepared = prepare(case, tmp_path)
    if case.name == "output_in_proc":
        assert not Path("/proc/fairdistill-out").exists()
    assert_refused(case, prepared, run_in_process(prepared.command_line(), console))


def test_an_existing_run_is_not_replaced_without_overwrite(
    shared_server: None, tmp_path: Path, console: io.StringIO
) -> None:
    case = Case("existing_run", options_case(), "output-no-overwrite")
    prepared = prepare(case, tmp_path)
    earlier = prepared.output / prepared.run_name
    earlier.mkdir(parents=True)
    (earlier / "synthetic.parquet").write_bytes(b"published earlier")
    outcome = run_in_process(prepared.command_line(), console)
    assert outcome.exit_code == 2
    errors = [line for line in outcome.text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rule output-no-overwrite" in errors[0]
    assert "--overwrite" in errors[0] and str(earlier) in errors[0]
    assert "Traceback" not in outcome.text
    assert [p.name for p in prepared.output.iterdir()] == [prepared.run_name]
    assert (earlier / "synthetic.parquet").read_bytes() == b"published earlier"
    runs = flow_runs_named(prepared.run_name)
    assert [run.info.status for run in runs] == ["FAILED"]


def validate_command(data: Path, spec: Path) -> Outcome:
    result = CliRunner().invoke(app, ["validate", "--data", str(data), "--spec", str(spec)])
    return Outcome(result.exit_code, result.stdout + result.stderr)


def test_an_identifier_column_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """30,000 distinct ids pass validation, named in a warning, and are never one-hot."""
    rows = 30_000
    frame = loans(rows).with_columns(
        pl.Series("applicant_id", [f"A{i:07d}" for i in range(rows)]).shuffle(seed=3)
    )
    data = tmp_path / "loans.parquet"
    frame.write_parquet(data)
    spec = write_spec(tmp_path)
    outcome = validate_command(data, spec)
    assert outcome.exit_code == 0, outcome.text
    assert "column 'applicant_id' is left out of the model" in outcome.text
    assert "30,000 distinct values" in outcome.text
    completed = complete_spec(load_spec(spec), frame)
    assert completed.ignored_columns == ["applicant_id"]
    assert TabularCodec.fit(frame, completed).feature_dim < 20


def test_a_constant_column_passes_with_a_warning(tmp_path: Path) -> None:
    """One value everywhere is legitimate data (one branch, one year): kept, and said."""
    data = tmp_path / "loans.csv"
    BASE.with_columns(pl.lit("EUR").alias("currency")).write_csv(data)
    outcome = validate_command(data, write_spec(tmp_path))
    assert outcome.exit_code == 0, outcome.text
    assert "column 'currency' holds the same value ('EUR') in every row" in outcome.text


# ---------------------------------------------------------------- real subprocesses


def command(arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "fairdistill.flows.cli", *arguments]


@pytest.fixture(scope="module")
def subprocess_outcomes(
    tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str
) -> dict[str, tuple[Prepared, Outcome]]:
    """Every subprocess case, run at once: on two cores their imports overlap."""
    environment = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    environment.pop("MLFLOW_TRACKING_URI", None)
    folder = tmp_path_factory.mktemp("subprocess-cases")
    prepared = {name: prepare(BY_NAME[name], folder / name) for name in SUBPROCESS_CASES}
    debug = prepare(BY_NAME["missing_file"], folder / "debug")
    runs = {name: item.command_line() for name, item in prepared.items()}
    runs["debug"] = [*debug.command_line(), "--debug"]

    def execute(arguments: list[str]) -> Outcome:
        completed = subprocess.run(
            command(arguments), env=environment, capture_output=True, text=True, timeout=300
        )
        return Outcome(completed.returncode, completed.stdout + completed.stderr)

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        outcomes = dict(zip(runs, pool.map(execute, runs.values()), strict=True))
    return {name: (prepared.get(name, debug), outcomes[name]) for name in runs}


@pytest.mark.parametrize("name", sorted(SUBPROCESS_CASES))
def test_refused_by_the_real_command(name: str, subprocess_outcomes: dict) -> None:
    prepared, outcome = subprocess_outcomes[name]
    assert_refused(BY_NAME[name], prepared, outcome)


def test_debug_shows_the_traceback(subprocess_outcomes: dict) -> None:
    _, outcome = subprocess_outcomes["debug"]
    assert outcome.exit_code != 0
    assert "Traceback (most recent call last)" in outcome.text
    assert "DataReadError" in outcome.text
