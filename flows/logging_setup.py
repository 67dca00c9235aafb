"""Console logging for the command line: warnings only, a failure as its one line.

Prefect logs every step of a run (about 25 INFO lines), then a failed task or flow at
ERROR with its traceback and the error's text, twice; MLflow announces its database. The
command prints a failure itself, once, as one sentence, and draws the run's progress on a
terminal. So, unless ``--debug`` is given, the console shows warnings only, never the
records of a run's failure (Prefect's ERROR records and any record carrying an exception),
and no traceback. Only the console changes: Prefect's API handler still sends every record,
in full, to the server, where the UI shows it.
"""

from __future__ import annotations

import logging

from fairdistill.models.errors import FairdistillError


class TracebackFreeFormatter(logging.Formatter):
    """Formats through the handler's own formatter, leaving the traceback out.

    The record is restored afterwards, because every handler shares it and the next one
    (Prefect's API handler) must still see the traceback.
    """

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class DropUserErrorRecords(logging.Filter):
    """Drops records carrying a FairdistillError (the CLI reports it once, itself) and Great
    Expectations' chatter below WARNING (it announces its temporary folders at INFO, and sets
    its own loggers' levels on import, so a level set beforehand does not hold)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("great_expectations") and record.levelno < logging.WARNING:
            return False
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, FairdistillError)


class DropFailureRecords(DropUserErrorRecords):
    """Also drops every record of a failure: Prefect's ERROR records ("Task run … Finished
    in state Failed", retries exhausted, a crash) and any record carrying an exception.
    Whatever failed reaches the user as the command's one error line; --debug shows these.
    And the libraries' Python warnings Prefect logs ("ks_2samp: Exact calculation
    unsuccessful"): nothing a user of the command can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or (record.name.startswith("prefect") and record.levelno >= ERROR):
            return False
        if record.name == "py.warnings":
            return False
        return super().filter(record)


ERROR = logging.ERROR
# The console's level without --debug: warnings are for the user, the steps of a run for
# the Prefect UI (and the live display on a terminal).
CONSOLE_LEVEL = logging.WARNING
_FILTER = DropFailureRecords()


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


def configure_console(*, debug: bool) -> None:
    """Show every record and its traceback on the console only with ``debug``; else only
    warnings that are not part of a failure. Safe to call repeatedly."""
    # MLflow logs through a handler of its own ("Creating initial MLflow database tables").
    logging.getLogger("mlflow").setLevel(logging.INFO if debug else CONSOLE_LEVEL)
    for handler in _console_handlers():
        formatter = handler.formatter
        wrapped = isinstance(formatter, TracebackFreeFormatter)
        if debug:
            handler.removeFilter(_FILTER)
            handler.setLevel(logging.NOTSET)
            if wrapped:
                handler.setFormatter(formatter.inner)  # type: ignore[union-attr]
            continue
        handler.setLevel(CONSOLE_LEVEL)
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
        if not wrapped:
            handler.setFormatter(TracebackFreeFormatter(formatter))


def flush_logs_to_server(timeout: float = 5.0) -> None:
    """Send the log records still queued for Prefect's API while its server still runs.

    The command exits through its exit handlers, one of which stops the temporary server;
    records still queued then fail to send ("--- Error logging to API --- All connection
    attempts failed" on stderr, after the command's own last line).
    """
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
