"""Prefect's temporary server starts while the libraries import, and only when it is needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from fairdistill.flows import server_warmup


def test_with_an_api_in_the_environment_nothing_is_launched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")

    def refuse(port: int) -> subprocess.Popen[bytes]:
        raise AssertionError("a server was launched although an API is configured")

    monkeypatch.setattr(server_warmup, "launch_server", refuse)
    server_warmup.start_temporary_server_early()()


def test_with_an_api_in_the_profile_the_launched_server_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    launched: list[subprocess.Popen[bytes]] = []
    launch = server_warmup.launch_server

    def launch_and_keep(port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
        launched.append(launch(port, log))
        return launched[-1]

    monkeypatch.setattr(server_warmup, "launch_server", launch_and_keep)
    wait = server_warmup.start_temporary_server_early()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        wait()
    (process,) = launched
    assert process.poll() is not None


def test_a_server_that_exits_is_not_waited_for() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    assert not server_warmup.server_answers(process, server_warmup.free_port())
    assert time.monotonic() - started < 10


# In a process of its own with a fresh Prefect home: the test session's server, started by
# earlier tests, would make the check pass whether the early start worked or not.
EARLY_START = textwrap.dedent(
    """
    from fairdistill.flows.server_warmup import start_temporary_server_early

    wait = start_temporary_server_early()
    wait()
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    assert server.running and server.server_process is not None
    print(httpx.get(f"{server.api_url}/health", timeout=10).status_code)
    # What the flow's client does: it must find this server, not start a second one.
    with get_client(sync_client=True) as client:
        assert client.api_url.port == server.port
        print(client.api_healthcheck() is None)
    print(server.port)
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
    status, healthy, port = completed.stdout.split()
    assert (status, healthy) == ("200", "True")
    # Stopped when the process exited: nothing listens on its port any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
