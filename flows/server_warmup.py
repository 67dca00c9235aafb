"""Start Prefect's temporary API server first thing, while the pipeline's libraries import.

Without a configured Prefect API, the first flow call starts a temporary server in a
subprocess and waits for it: 10-12 s on two cores in a fresh home, most of it creating and
migrating its database, 4 s in a used one. Before any of that can begin, Prefect's server
module must be imported (3 s), and the command had already spent 3-9 s importing torch,
MLflow and Great Expectations. The server needs nothing from the flow, so the command
launches the same subprocess Prefect would (same module, options and environment) before
importing anything, lets it start on the other core, and hands it to Prefect once it
answers: Prefect keeps one temporary server per process, and the flow's client finds it.
Anything unexpected leaves the start to Prefect as usual.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

# Prefect's own range and settings for its temporary server (prefect.server.api.server).
_PORTS = range(8000, 9000)
_SERVER_ENVIRONMENT = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def start_temporary_server_early(log: Path | None = None) -> Callable[[], None]:
    """Launch the temporary server now; return the call that waits for it and hands it over.

    Call the returned function before the first flow call. It does nothing more when a
    Prefect API is configured (the server launched is stopped) or when the launch failed.
    ``log``, when given, receives the server's own output instead of the console.
    """
    if os.environ.get("PREFECT_API_URL"):
        return lambda: None
    try:
        port = free_port()
        process = launch_server(port, log)
    except OSError:
        logger.debug("launching Prefect's temporary server early failed", exc_info=True)
        return lambda: None
    # Stopped at exit whatever happens (bad input, interruption); once handed over, Prefect's
    # own stop at exit gets there first.
    atexit.register(_stop, process)
    return lambda: _hand_over(process, port)


def free_port() -> int:
    """A loopback port in Prefect's own range that nothing listens on now."""
    for _ in range(20):
        port = random.choice(_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port for Prefect's temporary server")


def launch_server(port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the uvicorn process Prefect would start for its temporary server on ``port``.

    With ``log``, its output is appended there: a server that fails to start (two starting
    on one fresh database race in its migrations, and Prefect then starts another) prints
    a traceback that is nothing a user of the command can act on.
    """
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise OSError("prefect is not installed")
    app_folder = Path(spec.origin).parent.parent
    command = [
        sys.executable,
        *("-m", "uvicorn", "--app-dir", str(app_folder)),
        *("--factory", "prefect.server.api.server:create_app"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--log-level", "error", "--lifespan", "on"),
    ]
    environment = {**os.environ, **_SERVER_ENVIRONMENT}
    if log is None:
        return subprocess.Popen(command, env=environment)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        # The child keeps its own copy of the descriptor; this one closes at once.
        return subprocess.Popen(command, env=environment, stdout=output, stderr=output)


def _hand_over(process: subprocess.Popen[bytes], port: int) -> None:
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    server = SubprocessASGIServer()
    # A profile may name an API after all, or the server may already run in this process.
    if get_current_settings().api.url or server.running or not server_answers(process, port):
        _stop(process)
        return
    server.port = port
    server.server_process = process
    server.running = True
    atexit.register(server.stop)
    logger.info("Prefect's temporary server runs on http://127.0.0.1:%d", port)


def server_answers(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the launched server's health check answers before the startup timeout."""
    import httpx

    deadline = time.monotonic() + float(os.environ.get(_TIMEOUT_VARIABLE) or 30)
    with httpx.Client() as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    logger.debug("the early temporary server did not answer; Prefect starts its own")
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
