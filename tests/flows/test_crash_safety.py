"""A real ``fairdistill run`` killed (SIGKILL) while it generates or publishes leaves no
partial dataset and no manifest without its data in the output root.

A kill can leave a hidden staging folder behind: readers never see it (it starts with a
dot), and a later publish into the same root removes it once it is older than any
publish could take. The kill of the publish code itself at many random moments is tested
in tests/tasks/test_run_folder.py, without the cost of a whole run per kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runs import inconsistencies, run_command, write_german_input

from fairdistill.flows.settings import load_settings
from fairdistill.tasks.services.run_folder import STALE_STAGING_SECONDS, remove_stale_staging

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def german_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_german_input(tmp_path_factory.mktemp("crash-input"))


def run_until(
    arguments: list[str],
    environment: dict[str, str],
    root: Path,
    moment: Callable[[], bool],
    log: Path,
) -> tuple[int, list[str]]:
    """Start the command, watch ``root`` until ``moment()`` is true, then SIGKILL it."""
    with log.open("wb") as stream:
        process = subprocess.Popen(
            arguments, env=environment, stdout=subprocess.DEVNULL, stderr=stream
        )
        problems: list[str] = []
        deadline = time.monotonic() + 480
        while process.poll() is None and not moment() and time.monotonic() < deadline:
            problems += inconsistencies(root)
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        return process.wait(), problems


def make_stale(entry: Path) -> None:
    when = time.time() - STALE_STAGING_SECONDS - 1
    for item in [entry, *(entry.iterdir() if entry.is_dir() and not entry.is_symlink() else [])]:
        os.utime(item, (when, when), follow_symlinks=False)


def visible(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_killed_after_generating_publishes_nothing(
    german_input: Path, cli_environment: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "published"
    generated = load_settings().work_root / "killed-generating" / "synthetic.parquet"
    log = tmp_path / "stderr.log"
    code, problems = run_until(
        run_command(german_input, root, "killed-generating"),
        cli_environment,
        root,
        generated.exists,
        log,
    )
    assert generated.exists() and code == -signal.SIGKILL, log.read_text()[-3000:]
    assert problems == []
    assert visible(root) == []


def test_killed_while_publishing_leaves_a_whole_run_or_nothing(
    german_input: Path, cli_environment: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "published"

    def staging_appeared() -> bool:
        return root.exists() and any(".partial-" in p.name for p in root.iterdir())

    log = tmp_path / "stderr.log"
    code, problems = run_until(
        run_command(german_input, root, "killed-publishing"),
        cli_environment,
        root,
        staging_appeared,
        log,
    )
    assert root.exists(), log.read_text()[-3000:]  # the run reached publish
    assert problems == []
    assert inconsistencies(root) == []
    # Killed before the rename: nothing visible; after it: the whole run and its pointer.
    assert visible(root) in ([], ["killed-publishing", "latest"]), code
    for leftover in [p for p in root.iterdir() if p.name.startswith(".")]:
        make_stale(leftover)
    remove_stale_staging(root)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert inconsistencies(root) == []
