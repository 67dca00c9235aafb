"""Retry policy shared by the stages.

Transient failures (a flaky filesystem, a lost worker) are worth retrying with backoff;
a data, spec, gate or integrity failure is not: it would fail the same way again, only
later.
"""

from __future__ import annotations

from typing import Any

from fairdistill.models.errors import FairdistillError


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    error = getattr(state, "data", None)
    return not isinstance(error, FairdistillError)


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_if_transient,
}
