"""Start Prefect's temporary API server while the pipeline's libraries import.

Without a configured Prefect API, the first flow call starts a temporary server in a
subprocess and waits for it: 8-10 s on two cores in a fresh home (it creates and migrates its
database), before any stage runs. That subprocess needs nothing from the flow, so the command
line starts it first and imports torch, MLflow and Great Expectations meanwhile, on the other
core. Prefect keeps one temporary server per process, so the flow then finds it running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def start_temporary_server_early() -> Callable[[], None]:
    """Begin starting the temporary server in the background; return a wait for it.

    Does nothing when a Prefect API is configured. Call the returned function before the
    first flow call: until the server answers, the flow would find it "running" and fail to
    connect. A start that fails here is left to the flow, which starts the server again and
    reports its own error.
    """
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return lambda: None
    thread = threading.Thread(target=_start_server, name="prefect-server-start", daemon=True)
    thread.start()
    return thread.join


def _start_server() -> None:
    try:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()
    except Exception:  # the flow's own start reports the failure
        logger.debug("starting Prefect's temporary server early failed", exc_info=True)
