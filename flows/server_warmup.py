"""Start Prefect's temporary server while the run's libraries import.

With no Prefect server configured, Prefect starts a temporary one at the flow's first API
call and waits for it: about 10 s on two cores, after the command has already spent about
as long importing torch, MLflow and Great Expectations. Starting the server first, in a
background thread, lets the two overlap. The flow then finds it running. When a server is
configured (``PREFECT_API_URL``), nothing starts. A warm-up that fails is not an error:
Prefect starts the server itself, as it would have anyway, and reports any real problem.
"""

from __future__ import annotations

import logging
import threading

_LOGGER = logging.getLogger(__name__)


def needs_temporary_server() -> bool:
    """Prefect's own rule: no API URL configured and the temporary server allowed."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


class ServerWarmup:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def start(self) -> ServerWarmup:
        if needs_temporary_server():
            self.thread = threading.Thread(
                target=self._start_server, name="prefect-server-warmup", daemon=True
            )
            self.thread.start()
        return self

    @staticmethod
    def _start_server() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:  # Prefect retries the start when the flow begins
            _LOGGER.debug("starting Prefect's temporary server early failed", exc_info=True)

    def wait(self) -> None:
        """Block until the server answers (or the warm-up gave up): call before the flow.

        Prefect marks the server running before it answers; a flow starting in between
        would find it unreachable, so the flow must not start before this returns.
        """
        if self.thread is not None:
            self.thread.join()
