"""reproduce on a real published run: the recorded pipeline reruns to byte-identical output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fairdistill.flows.reproduce import reproduce

pytestmark = pytest.mark.slow


@pytest.fixture
def published_copy(finished_run, tmp_path: Path) -> Path:
    """A private copy of the published run folder."""
    summary, _ = finished_run
    folder = tmp_path / "run"
    shutil.copytree(summary.published.folder, folder)
    return folder / "manifest.json"


def test_reproduce_gives_byte_identical_output(published_copy: Path, tmp_path: Path) -> None:
    result = reproduce(published_copy, output=tmp_path / "again")
    assert result.identical, (result.recorded_sha256, result.reproduced_sha256)
