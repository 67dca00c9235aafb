"""What a person at a terminal sees while a run works: one live line per stage.

A stage shows a spinner while it runs, a bar with epochs, loss and time left while it
trains, and its time (or "reused") when done. The display shares Prefect's console, so
log lines print above it instead of tearing through it. Schedulers (no terminal,
``--quiet``, ``--json``) get no display: their record is the log and MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from rich.console import Console, RenderableType
from rich.default_styles import DEFAULT_STYLES
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from rich.theme import Theme

from fairdistill.tasks.services import progress

# Prefect's console has its own theme without rich's progress styles; the display lends them.
_PROGRESS_THEME = Theme(
    {name: style for name, style in DEFAULT_STYLES.items() if name.startswith(("bar.", "progress"))}
)


class TrainingTimeLeft(TimeRemainingColumn):
    """Time left, only for a stage that counts epochs and has not finished."""

    def render(self, task: Task) -> Text:
        if task.total is None or task.finished:
            return Text("")
        return super().render(task)


class StageMark(SpinnerColumn):
    """A spinner while the stage runs, then a tick, or a cross when it failed."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("failed"):
            return Text("✗", style="red")
        return super().render(task)


class LiveStages:
    """A progress listener (:mod:`fairdistill.tasks.services.progress`) drawing rich rows."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            StageMark(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<16}"),
            BarColumn(bar_width=28),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            TrainingTimeLeft(),
            console=console,
            transient=False,
        )
        self.rows: dict[str, TaskID] = {}

    def _row(self, stage: str) -> TaskID:
        if stage not in self.rows:
            self.rows[stage] = self.progress.add_task(
                stage, total=None, detail="", failed=False, resumed=""
            )
        return self.rows[stage]

    def stage_started(self, stage: str) -> None:
        self._row(stage)

    def stage_resumed(self, stage: str, *, epoch: int) -> None:
        # Kept beside the epoch count to the end: the stage's time covers only this attempt.
        note = f"resumed from epoch {epoch}"
        self.progress.update(self._row(stage), detail=note, resumed=f" · {note}")

    def epoch_finished(
        self, stage: str, *, epoch: int, epochs: int, metrics: dict[str, float]
    ) -> None:
        row = self._row(stage)
        loss = metrics.get("loss")  # what the optimiser minimises
        self.progress.update(
            row,
            total=epochs,
            completed=epoch + 1,
            detail=f"epoch {epoch + 1}/{epochs}"
            + (f" · loss {loss:.4f}" if loss is not None else "")
            + self.progress.tasks[row].fields["resumed"],
        )

    def stage_finished(self, stage: str, *, seconds: float, reused: bool) -> None:
        row = self._row(stage)
        total = self.progress.tasks[self.rows[stage]].total or 1
        if reused:
            self.progress.update(row, detail="reused")
        self.progress.update(row, total=total, completed=total)
        self.progress.stop_task(row)

    def stage_failed(self, stage: str, *, seconds: float) -> None:
        row = self._row(stage)
        self.progress.update(row, description=f"[red]{stage} failed[/]", failed=True)
        self.progress.stop_task(row)


def prefect_console() -> Console | None:
    """The console Prefect logs to, when it is an interactive terminal."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and handler.console.is_terminal:
            return handler.console
    return None


@contextmanager
def live_stages(console: Console) -> Iterator[LiveStages]:
    display = LiveStages(console)
    console.push_theme(_PROGRESS_THEME)
    try:
        with display.progress, progress.listening(display):
            yield display
    finally:
        console.pop_theme()


def live_stages_if_interactive(*, enabled: bool) -> AbstractContextManager[object]:
    """The live display on Prefect's terminal console; nothing for schedulers and pipes."""
    console = prefect_console() if enabled else None
    return live_stages(console) if console is not None else nullcontext()
