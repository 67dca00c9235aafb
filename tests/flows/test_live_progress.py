"""The live stage display, drawn on a terminal-like console, and silent for schedulers."""

from __future__ import annotations

import io
import re
from contextlib import nullcontext

from rich.console import Console
from rich.theme import Theme

from fairdistill.flows.live_progress import live_stages, live_stages_if_interactive
from fairdistill.tasks.services import progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    # Like Prefect's console: a theme of its own, without rich's progress styles.
    console = Console(file=stream, force_terminal=True, width=120, theme=Theme({}, inherit=False))
    return console, stream


def test_stages_show_epochs_loss_and_outcome() -> None:
    console, stream = terminal()
    with live_stages(console):
        progress.stage_started("validate")
        progress.stage_finished("validate", seconds=0.4, reused=True)
        progress.stage_started("train_teacher")
        for epoch in range(3):
            metrics = {"loss": 2.0 - epoch, "kl": 0.1}
            progress.epoch_finished("train_teacher", epoch=epoch, epochs=3, metrics=metrics)
        progress.stage_finished("train_teacher", seconds=3.0, reused=False)
        progress.stage_started("generate")
        progress.stage_failed("generate", seconds=0.1)
    shown = ANSI.sub("", stream.getvalue())
    final = shown.split("\r")[-1]
    assert "validate" in final and "reused" in final
    assert "epoch 3/3 · loss 0.0000" in final
    assert "generate failed" in final


def test_events_after_the_run_draw_nothing() -> None:
    console, stream = terminal()
    with live_stages(console):
        progress.stage_started("validate")
    drawn = stream.getvalue()
    progress.stage_started("prepare")
    assert stream.getvalue() == drawn
    assert "prepare" not in ANSI.sub("", drawn)


def test_no_display_for_schedulers_or_pipes() -> None:
    assert isinstance(live_stages_if_interactive(enabled=False), nullcontext)
    # Under pytest Prefect's console writes to a capture, not a terminal.
    assert isinstance(live_stages_if_interactive(enabled=True), nullcontext)


def test_a_resumed_stage_says_from_which_epoch_to_the_end() -> None:
    console, stream = terminal()
    with live_stages(console):
        progress.stage_started("train_teacher")
        progress.stage_resumed("train_teacher", epoch=5)
        for epoch in range(5, 8):
            progress.epoch_finished("train_teacher", epoch=epoch, epochs=8, metrics={"loss": 1.0})
        progress.stage_finished("train_teacher", seconds=2.0, reused=False)
    final = ANSI.sub("", stream.getvalue()).split("\r")[-1]
    assert "epoch 8/8 · loss 1.0000 · resumed from epoch 5" in final
