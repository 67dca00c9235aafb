"""Prefect's temporary server starts while the libraries import, and only when it is needed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from fairdistill.flows.server_warmup import start_temporary_server_early


def test_with_a_configured_api_nothing_is_started() -> None:
    before = {thread.name for thread in threading.enumerate()}
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        wait = start_temporary_server_early()
    wait()
    started = {thread.name for thread in threading.enumerate()} - before
    assert "prefect-server-start" not in started


# In a process of its own with a fresh Prefect home: the test session's server, started by
# earlier tests, would make the check pass whether the early start worked or not.
EARLY_START = textwrap.dedent(
    """
    import httpx
    from prefect.server.api.server import SubprocessASGIServer
    from fairdistill.flows.server_warmup import start_temporary_server_early

    wait = start_temporary_server_early()
    wait()
    server = SubprocessASGIServer()
    assert server.running and server.server_process is not None
    print(httpx.get(f"{server.api_url}/health", timeout=10).status_code)
    # What the flow's client does: it must find this server, not start a second one.
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        assert client.api_url.host == "127.0.0.1"
        assert client.api_url.port == server.port
        print(client.api_healthcheck() is None)
    server.stop()
    """
)


@pytest.mark.slow
def test_the_early_server_answers_and_is_the_one_the_flow_uses(tmp_path: Path) -> None:
    environment = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    environment.pop("PREFECT_API_URL", None)
    completed = subprocess.run(
        [sys.executable, "-c", EARLY_START],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["200", "True"]
