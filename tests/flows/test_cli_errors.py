"""What the command prints when something goes wrong: one sentence, an exit code, and no
traceback on the console unless --debug."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from prefect.logging.handlers import PrefectConsoleHandler

from fairdistill.flows.cli import fail, one_sentence
from fairdistill.flows.logging_setup import configure_console
from fairdistill.models.errors import ConfigError, DataValidationError, QualityGateError


def test_a_user_error_is_one_sentence_naming_file_column_rule_and_remedy() -> None:
    error = DataValidationError(
        "The data failed validation:\ncolumn 'age' holds text.",
        file="/data/loans.csv",
        column="age",
        rule="fairdistill.numeric_column_holds_text",
        hint="remove the text values.",
    )
    assert one_sentence(error) == (
        "The data failed validation: column 'age' holds text [file /data/loans.csv, "
        "column 'age', rule fairdistill.numeric_column_holds_text]; what to do: remove the "
        "text values."
    )


def test_an_unexpected_error_keeps_its_first_line_and_points_to_debug() -> None:
    text = one_sentence(RuntimeError("disk on fire\n  at line 3\n  at line 4"))
    assert text == "unexpected RuntimeError: disk on fire; rerun with --debug to see the traceback."


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad option", rule="config-schema"), 2),
        (QualityGateError("gate missed", rule="quality-gates"), 3),
        (KeyError("surprise"), 1),
    ],
)
def test_exit_codes(error: Exception, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        fail(error, debug=False)
    assert caught.value.exit_code == code
    printed = capsys.readouterr().err
    assert printed.startswith("error: ") and printed.count("\n") == 1


def test_debug_raises_the_error_itself() -> None:
    error = ConfigError("bad option")
    with pytest.raises(ConfigError) as caught:
        fail(error, debug=True)
    assert caught.value is error


class Collect(logging.Handler):
    """Stands for Prefect's API handler, which must still receive tracebacks."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.getMessage(), record.exc_info is not None))


@pytest.fixture
def console() -> Iterator[tuple[io.StringIO, Collect, logging.Logger]]:
    root = logging.getLogger()
    saved = [(h, h.formatter, list(h.filters)) for h in root.handlers]
    stream = io.StringIO()
    handler = PrefectConsoleHandler(stream=stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    collect = Collect()
    root.addHandler(handler)
    logger = logging.getLogger("fairdistill.test.console")
    logger.addHandler(collect)
    yield stream, collect, logger
    root.removeHandler(handler)
    logger.removeHandler(collect)
    for existing, formatter, filters in saved:
        existing.setFormatter(formatter)
        existing.filters[:] = filters


def log_failure(logger: logging.Logger, error: Exception) -> None:
    try:
        raise error
    except Exception:
        logger.exception("Task run failed with exception: %r", error)


def test_the_console_shows_warnings_but_no_failure_record_and_no_traceback(console) -> None:
    """A failure prints its one line (the command's), nothing else."""
    stream, collect, logger = console
    configure_console(debug=False)
    configure_console(debug=False)  # twice: still one filter, one wrapper
    log_failure(logger, DataValidationError("bad data", rule="r"))
    log_failure(logger, ValueError("a bug"))
    prefect_logger = logging.getLogger("prefect.task_runs")
    prefect_logger.error("Finished in state Failed('Task run encountered an exception')")
    logger.setLevel(logging.INFO)
    logger.info("Beginning flow run 'copper-dragon'")
    logger.warning("column 'id' is left out of the model")
    logger.setLevel(logging.NOTSET)
    logging.getLogger("py.warnings").warning("RuntimeWarning: ks_2samp: Exact calculation")
    printed = stream.getvalue()
    assert printed == "WARNING column 'id' is left out of the model\n"
    # The records themselves are untouched: the API handler still gets them, tracebacks too.
    assert [has for _, has in collect.records] == [True, True, False, False]


def test_debug_shows_tracebacks_again(console) -> None:
    stream, _, logger = console
    configure_console(debug=False)
    configure_console(debug=True)
    log_failure(logger, DataValidationError("bad data", rule="r"))
    printed = stream.getvalue()
    assert "bad data" in printed and "Traceback (most recent call last)" in printed


def test_great_expectations_chatter_stays_off_the_console_unless_debugging(console) -> None:
    stream, _, _ = console
    chatty = logging.getLogger("great_expectations.data_context.types.base")
    chatty.setLevel(logging.INFO)  # as Great Expectations sets it on import
    configure_console(debug=False)
    chatty.info("Created temporary directory")
    chatty.warning("a real warning")
    configure_console(debug=True)
    chatty.info("seen when debugging")
    printed = stream.getvalue()
    assert "Created temporary directory" not in printed
    assert "a real warning" in printed and "seen when debugging" in printed


def test_a_bad_setting_in_the_environment_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "FAIRDISTILL_HOME": str(tmp_path),
        "FAIRDISTILL_TORCH_THREADS": "many",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "fairdistill.flows.cli", "config-schema"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "error: the environment variable FAIRDISTILL_TORCH_THREADS is 'many', not a whole "
        "number [rule FAIRDISTILL_TORCH_THREADS]; what to do: set FAIRDISTILL_TORCH_THREADS "
        "to a whole number such as 1, or unset it."
    )
    assert "Traceback" not in completed.stdout + completed.stderr
