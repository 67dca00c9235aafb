"""Prefect's temporary server starts early only when no server is configured, and is
answering by the time the flow may start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from fairdistill.flows.server_warmup import ServerWarmup, needs_temporary_server


def test_a_configured_server_is_used_as_it_is() -> None:
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert not needs_temporary_server()
        warmup = ServerWarmup().start()
    assert warmup.thread is None
    warmup.wait()  # nothing to wait for


@pytest.mark.slow
def test_without_a_server_the_temporary_one_answers_after_wait(tmp_path: Path) -> None:
    # In a child process: the temporary server is a process-wide singleton.
    script = textwrap.dedent(
        """
        import httpx
        from prefect.server.api.server import SubprocessASGIServer
        from fairdistill.flows.server_warmup import ServerWarmup

        warmup = ServerWarmup().start()
        assert warmup.thread is not None
        warmup.wait()
        server = SubprocessASGIServer()
        assert server.running
        print(httpx.get(f"{server.api_url}/health", timeout=10).status_code)
        """
    )
    environment = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "true",
    }
    environment.pop("PREFECT_API_URL", None)
    finished = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().splitlines()[-1] == "200"
