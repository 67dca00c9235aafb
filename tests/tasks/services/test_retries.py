"""The stages' retry policy on the real Prefect engine: a transient failure is retried, a
user's error (bad data, a missed gate) fails at once."""

from __future__ import annotations

import pytest
from prefect import task

from fairdistill.models.errors import DataValidationError
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES

pytestmark = pytest.mark.slow


def flaky(error: Exception, failures: int) -> tuple[object, list[int]]:
    attempts: list[int] = []

    @task(**{**TRANSIENT_RETRIES, "retry_delay_seconds": 0})
    def stage() -> str:
        attempts.append(len(attempts))
        if len(attempts) <= failures:
            raise error
        return "done"

    return stage, attempts


def test_a_transient_failure_is_retried_until_it_passes() -> None:
    stage, attempts = flaky(OSError("the filesystem blinked"), failures=2)
    assert stage() == "done"
    assert len(attempts) == 3


def test_a_users_error_is_not_retried() -> None:
    stage, attempts = flaky(DataValidationError("bad column", rule="r"), failures=5)
    with pytest.raises(DataValidationError):
        stage()
    assert len(attempts) == 1
