"""Progress of a run as events, for whoever shows it (the command line's live display).

Stages announce when they start and finish and every training epoch; listeners subscribe
for the length of a run. Listeners live in the process that runs the flow: a stage on a
remote Dask worker reaches no listener here, and its epochs still go to the logs and to
MLflow. A listener that fails never fails the run: progress is a courtesy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

_LOGGER = logging.getLogger(__name__)


class ProgressListener(Protocol):
    def stage_started(self, stage: str) -> None: ...

    def stage_finished(self, stage: str, *, seconds: float, reused: bool) -> None: ...

    def stage_failed(self, stage: str, *, seconds: float) -> None: ...

    def stage_resumed(self, stage: str, *, epoch: int) -> None: ...

    def epoch_finished(
        self, stage: str, *, epoch: int, epochs: int, metrics: dict[str, float]
    ) -> None: ...


_listeners: list[ProgressListener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: ProgressListener) -> Iterator[ProgressListener]:
    """Deliver this process's progress events to ``listener`` until the block ends."""
    with _lock:
        _listeners.append(listener)
    try:
        yield listener
    finally:
        with _lock:
            _listeners.remove(listener)


def _deliver(event: str, *arguments: object, **keywords: object) -> None:
    with _lock:
        current = list(_listeners)
    for listener in current:
        try:
            getattr(listener, event)(*arguments, **keywords)
        except Exception:  # a broken display must not break a run
            _LOGGER.debug("progress listener %r failed on %s", listener, event, exc_info=True)


def stage_started(stage: str) -> None:
    _deliver("stage_started", stage)


def stage_finished(stage: str, *, seconds: float, reused: bool) -> None:
    _deliver("stage_finished", stage, seconds=seconds, reused=reused)


def stage_failed(stage: str, *, seconds: float) -> None:
    _deliver("stage_failed", stage, seconds=seconds)


def stage_resumed(stage: str, *, epoch: int) -> None:
    """The stage continues from the checkpoint saved after epoch ``epoch`` (counted from 1)."""
    _deliver("stage_resumed", stage, epoch=epoch)


def epoch_finished(stage: str, *, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
    """``epoch`` counts from zero, as the training loop does; ``epochs`` is the total."""
    _deliver("epoch_finished", stage, epoch=epoch, epochs=epochs, metrics=metrics)
