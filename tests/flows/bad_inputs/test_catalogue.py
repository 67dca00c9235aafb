"""Every bad input of the catalogue through the real ``fairdistill`` command, in a subprocess.

Each must be answered with its exit code, exactly one stderr line, starting with ``error:``
and naming the rule (and the column and the file when it has them) and what to do, no
traceback, nothing in the output folder, and the right record: no run at all for what is
refused before any work starts, a FAILED MLflow run naming the rule for what a run finds.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from catalogue import BY_NAME, CASES, Case, Invocation, write_spec

from fairdistill.flows.settings import load_settings

# At least the forty, each of the cases it names among them.
assert len(CASES) >= 40, len(CASES)

BEFORE_RUN = [case for case in CASES if not case.slow]
IN_RUN = [case for case in CASES if case.slow]
# Subprocesses at once: refusals are mostly imports, which overlap well on two cores.
WORKERS = 4


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def command(arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "fairdistill.flows.cli", *arguments]


def execute(arguments: list[str], environment: dict[str, str]) -> Outcome:
    completed = subprocess.run(
        command(arguments), env=environment, capture_output=True, text=True, timeout=600
    )
    return Outcome(completed.returncode, completed.stdout, completed.stderr)


def run_case(invocation: Invocation, environment: dict[str, str]) -> Outcome:
    if invocation.setup is not None:
        prepared = execute(invocation.setup, environment)
        assert prepared.exit_code == 0, prepared
        if invocation.after_setup is not None:
            invocation.after_setup()
    return execute(invocation.arguments, environment)


def own_environment() -> dict[str, str]:
    """This session's home; no Prefect server named (a run would start its own)."""
    variables = {**os.environ}
    variables.pop("PREFECT_API_URL", None)
    variables.pop("MLFLOW_TRACKING_URI", None)
    return variables


@pytest.fixture(scope="module")
def environment(prefect_api_url: str) -> dict[str, str]:
    """This session's home, and the shared Prefect server for whatever reaches a run."""
    return {**own_environment(), "PREFECT_API_URL": prefect_api_url}


def run_all(
    cases: list[Case], factory: pytest.TempPathFactory, environment: dict[str, str]
) -> dict[str, tuple[Invocation, Outcome]]:
    invocations = {case.name: case.build(factory.mktemp(case.name)) for case in cases}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {
            name: pool.submit(run_case, invocation, environment)
            for name, invocation in invocations.items()
        }
        return {name: (invocations[name], future.result()) for name, future in futures.items()}


@pytest.fixture(scope="module")
def refused_before_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Invocation, Outcome]]:
    # No server: none of these may get as far as needing one.
    return run_all(BEFORE_RUN, tmp_path_factory, own_environment())


@pytest.fixture(scope="module")
def refused_in_run(
    tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]
) -> dict[str, tuple[Invocation, Outcome]]:
    return run_all(IN_RUN, tmp_path_factory, environment)


def flow_runs_named(run_name: str) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`fairdistill.run_name` = '{run_name}'",
        output_format="list",
    )


def assert_one_error_line(case: Case, invocation: Invocation, outcome: Outcome) -> str:
    assert outcome.exit_code == case.exit_code, outcome
    lines = outcome.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    others = [line for line in lines if not line.startswith(("error:", *case.other_stderr))]
    assert len(errors) == 1 and others == [], outcome
    line = errors[0]
    assert f"rule {case.rule}" in line, line
    assert "what to do:" in line and line.endswith("."), line
    if case.column:
        assert f"column '{case.column}'" in line, line
    if invocation.names_file:
        assert str(invocation.names_file) in line, line
    for text in invocation.names:
        assert text in line, line
    for text in invocation.absent:
        assert text not in line, line
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome
    return line


def assert_nothing_written(invocation: Invocation) -> None:
    output = invocation.output
    if output is not None:
        assert not output.exists() or not any(output.iterdir()), sorted(output.rglob("*"))
    if invocation.check is not None:
        invocation.check()


def assert_recorded(case: Case, invocation: Invocation) -> None:
    if invocation.run_name is None:
        return
    runs = flow_runs_named(invocation.run_name)
    if case.recorded == "none":
        assert runs == [], [run.info.run_id for run in runs]
        return
    assert [run.info.status for run in runs] == ["FAILED"]
    assert case.rule in runs[0].data.tags["fairdistill.failure"]


def assert_refused(case: Case, invocation: Invocation, outcome: Outcome) -> None:
    assert_one_error_line(case, invocation, outcome)
    if invocation.arguments[0] == "run":
        # No terminal: no live display, and a failure prints nothing but its line.
        assert outcome.stdout == "", outcome
    assert_nothing_written(invocation)
    assert_recorded(case, invocation)


@pytest.mark.parametrize("case", BEFORE_RUN, ids=[case.name for case in BEFORE_RUN])
def test_refused_before_any_work(case: Case, refused_before_run: dict) -> None:
    invocation, outcome = refused_before_run[case.name]
    assert_refused(case, invocation, outcome)


@pytest.mark.slow
@pytest.mark.parametrize("case", IN_RUN, ids=[case.name for case in IN_RUN])
def test_refused_by_the_run(case: Case, refused_in_run: dict) -> None:
    invocation, outcome = refused_in_run[case.name]
    assert_refused(case, invocation, outcome)


# ---------------------------------------------------------------- the console around it


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    arguments = ["run", "--data", str(tmp_path / "nowhere.csv"), "--spec", str(spec), "--debug"]
    outcome = execute(arguments, own_environment())
    assert outcome.exit_code != 0
    assert "Traceback (most recent call last)" in outcome.stderr
    assert "DataReadError" in outcome.stderr


# Failures inside runs that start Prefect's temporary server, as a user's run does.
TEMPORARY_SERVER_CASES = {
    "plain": ("output_under_a_file", ()),
    "quiet": ("output_in_proc", ("--quiet",)),
}


@pytest.fixture(scope="module")
def with_temporary_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Invocation, Outcome]]:
    variables = own_environment()
    invocations = {}
    for label, (name, extra) in TEMPORARY_SERVER_CASES.items():
        built = BY_NAME[name].build(tmp_path_factory.mktemp(f"temporary-{label}"))
        invocations[label] = dataclasses.replace(built, arguments=[*built.arguments, *extra])
    with ThreadPoolExecutor(max_workers=len(invocations)) as pool:
        futures = {
            label: pool.submit(execute, invocation.arguments, variables)
            for label, invocation in invocations.items()
        }
        return {label: (invocations[label], future.result()) for label, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("label", sorted(TEMPORARY_SERVER_CASES))
def test_a_failure_in_a_run_prints_its_line_and_nothing_else(
    label: str, with_temporary_server: dict
) -> None:
    """No Prefect ``ERROR | Task run …`` line, no INFO lines without a
    terminal, no ``--- Error logging to API ---`` after the temporary server stopped."""
    invocation, outcome = with_temporary_server[label]
    assert_refused(BY_NAME[TEMPORARY_SERVER_CASES[label][0]], invocation, outcome)
    assert len(outcome.stderr.splitlines()) == 1, outcome
    assert "Error logging to API" not in outcome.stderr
