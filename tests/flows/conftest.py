"""One real Prefect server shared by the tests that run the ``fairdistill`` command.

Each command would otherwise start its own temporary server (10-20 s on two cores). The
server here is the one ``prefect`` starts for such a temporary run (same app, same
services, no UI), started once and reached through ``PREFECT_API_URL``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_START_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the Prefect server did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import prefect

    home = tmp_path_factory.mktemp("prefect-server")
    log = home / "server.log"
    environment = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
    }
    environment.pop("PREFECT_API_URL", None)
    port = free_port()
    with log.open("wb") as stream:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(prefect.__file__).resolve().parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=environment,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/api"
    # This server runs no background services, so none reclaims the slot a run killed
    # mid-stage holds: a `gpu` tag limit on it would stall every later GPU stage. Runs
    # against it leave tag limits alone; tests of the limit ask for one themselves.
    no_gpu_limit = pytest.MonkeyPatch()
    no_gpu_limit.setenv("FAIRDISTILL_GPU_SLOTS", "0")
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        no_gpu_limit.undo()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def cli_environment(prefect_api_url: str) -> dict[str, str]:
    """Environment of a ``fairdistill`` subprocess: this session's home, the shared server."""
    environment = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return environment
