"""Progress events reach the listeners subscribed in this process, and only while subscribed."""

from __future__ import annotations

import pytest

from fairdistill.tasks.services import progress


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def stage_started(self, stage: str) -> None:
        self.events.append(("started", stage))

    def stage_finished(self, stage: str, *, seconds: float, reused: bool) -> None:
        self.events.append(("finished", stage, reused))

    def stage_failed(self, stage: str, *, seconds: float) -> None:
        self.events.append(("failed", stage))

    def epoch_finished(
        self, stage: str, *, epoch: int, epochs: int, metrics: dict[str, float]
    ) -> None:
        self.events.append(("epoch", stage, epoch, epochs, metrics["loss"]))


class Broken(Recorder):
    def stage_started(self, stage: str) -> None:
        raise RuntimeError("display gone")


def test_events_reach_a_listener_only_while_it_listens() -> None:
    recorder = Recorder()
    progress.stage_started("before")
    with progress.listening(recorder):
        progress.stage_started("train_teacher")
        progress.epoch_finished("train_teacher", epoch=0, epochs=2, metrics={"loss": 1.5})
        progress.stage_finished("train_teacher", seconds=1.0, reused=False)
        progress.stage_failed("generate", seconds=0.5)
    progress.stage_started("after")
    assert recorder.events == [
        ("started", "train_teacher"),
        ("epoch", "train_teacher", 0, 2, 1.5),
        ("finished", "train_teacher", False),
        ("failed", "generate"),
    ]


def test_a_failing_listener_neither_fails_the_run_nor_silences_the_others() -> None:
    recorder = Recorder()
    with progress.listening(Broken()), progress.listening(recorder):
        progress.stage_started("validate")
    assert recorder.events == [("started", "validate")]


def test_a_listener_is_removed_even_when_the_block_raises() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError), progress.listening(recorder):
        raise ValueError("stage failed")
    progress.stage_started("validate")
    assert recorder.events == []
