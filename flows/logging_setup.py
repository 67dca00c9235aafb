"""Console logging for the command line: failures as one line, tracebacks only on request.

Prefect logs a failed task or flow with its full traceback on the console. For an error a
user can fix (a :class:`FairdistillError`) that traceback is noise: the CLI prints the error
once, as one sentence, at the end. So, unless ``--debug`` is given, the console handlers
drop the records that carry such an error and print any other record without its
traceback. Only the console changes: Prefect's API handler still sends the full record to
the server, where the UI shows it.
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


_FILTER = DropUserErrorRecords()


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


def configure_console(*, debug: bool) -> None:
    """Show tracebacks on the console only with ``debug``; safe to call repeatedly."""
    for handler in _console_handlers():
        formatter = handler.formatter
        wrapped = isinstance(formatter, TracebackFreeFormatter)
        if debug:
            handler.removeFilter(_FILTER)
            if wrapped:
                handler.setFormatter(formatter.inner)  # type: ignore[union-attr]
            continue
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
        if not wrapped:
            handler.setFormatter(TracebackFreeFormatter(formatter))
