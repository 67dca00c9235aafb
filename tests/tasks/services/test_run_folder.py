"""Atomic publish: a run folder appears whole or not at all, even when the writer is killed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fairdistill.models.errors import OutputError
from fairdistill.tasks.services.run_folder import (
    LATEST_LINK,
    STALE_STAGING_SECONDS,
    check_output_location,
    move_into_place,
    remove_stale_staging,
    write_run_folder,
)


def age(path: Path, seconds: float) -> None:
    """Make ``path`` (and what it holds) look ``seconds`` old."""
    when = time.time() - seconds
    for item in [path, *(path.iterdir() if path.is_dir() and not path.is_symlink() else [])]:
        os.utime(item, (when, when), follow_symlinks=False)


def test_checking_the_output_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "new" / "published"
    check_output_location(str(root), "run", overwrite=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where",
    [lambda folder: folder / "afile" / "sub", lambda _: Path("/proc/fairdistill-test")],
    ids=["under-a-file", "in-proc"],
)
def test_an_unwritable_output_is_refused(tmp_path: Path, where) -> None:
    (tmp_path / "afile").write_text("a file\n")
    root = where(tmp_path)
    with pytest.raises(OutputError) as caught:
        check_output_location(str(root), "run", overwrite=False)
    assert caught.value.rule == "output-writable" and caught.value.file == str(root)
    assert not root.exists()


def test_an_existing_run_is_refused_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(OutputError, match="already exists"):
        check_output_location(str(tmp_path), "run", overwrite=False)
    check_output_location(str(tmp_path), "run", overwrite=True)
    with pytest.raises(OutputError) as caught:
        write_run_folder(tmp_path, "run", {"a": b"1"}, overwrite=False)
    assert caught.value.rule == "output-no-overwrite"


def test_publish_writes_the_folder_and_points_latest_at_it(tmp_path: Path) -> None:
    folder = write_run_folder(tmp_path, "first", {"data": b"1", "manifest": b"{}"}, overwrite=False)
    assert folder == tmp_path / "first"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"data": b"1", "manifest": b"{}"}
    # Readable by others as any folder made under the usual umask, not owner-only.
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    write_run_folder(tmp_path, "second", {"data": b"2"}, overwrite=False)
    latest = tmp_path / LATEST_LINK
    assert latest.is_symlink() and os.readlink(latest) == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "latest", "second"]


def test_overwrite_replaces_the_whole_folder(tmp_path: Path) -> None:
    write_run_folder(tmp_path, "run", {"old": b"1"}, overwrite=False)
    write_run_folder(tmp_path, "run", {"new": b"2"}, overwrite=True)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run"]


def test_a_name_taken_while_publishing_is_refused_and_nothing_lost(tmp_path: Path) -> None:
    staging = tmp_path / ".run.partial-1"
    staging.mkdir()
    (staging / "data").write_bytes(b"mine")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data").write_bytes(b"theirs")
    with pytest.raises(OutputError, match="appeared while this run was publishing"):
        move_into_place(staging, tmp_path / "run", overwrite=False)
    assert (tmp_path / "run" / "data").read_bytes() == b"theirs"


def test_stale_staging_is_cleared_and_a_set_aside_run_put_back(tmp_path: Path) -> None:
    old = STALE_STAGING_SECONDS + 60
    for name in (".a.partial-1", ".b.partial-2", ".kept.replaced-3", ".gone.replaced-4"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data").write_bytes(name.encode())
    (tmp_path / "kept").mkdir()  # the overwrite finished: the set-aside copy is garbage
    (tmp_path / ".latest.7-ab.tmp").symlink_to("kept")
    for name in (".a.partial-1", ".kept.replaced-3", ".gone.replaced-4", ".latest.7-ab.tmp"):
        age(tmp_path / name, old)
    handled = remove_stale_staging(tmp_path)
    assert sorted(handled) == [
        ".a.partial-1",
        ".gone.replaced-4",
        ".kept.replaced-3",
        ".latest.7-ab.tmp",
    ]
    # The young staging folder may belong to a run publishing right now: left alone.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.partial-2", "gone", "kept"]
    assert (tmp_path / "gone" / "data").read_bytes() == b".gone.replaced-4"


def test_the_next_publish_clears_stale_staging(tmp_path: Path) -> None:
    (tmp_path / ".killed.partial-1").mkdir()
    age(tmp_path / ".killed.partial-1", STALE_STAGING_SECONDS + 1)
    write_run_folder(tmp_path, "next", {"data": b"1"}, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "next"]


# A writer that publishes run after run (and overwrites one now and then) until killed.
WRITER = """
import hashlib, json, sys
from pathlib import Path
from fairdistill.tasks.services.run_folder import write_run_folder

root, first = Path(sys.argv[1]), int(sys.argv[2])
for index in range(first, first + 40):
    name = "run-000" if index % 4 == 3 else f"run-{index:03d}"
    data = hashlib.sha256(str(index).encode()).digest() * 8192  # 256 KiB
    manifest = json.dumps({"sha256": hashlib.sha256(data).hexdigest()}).encode()
    write_run_folder(root, name, {"data.bin": data, "manifest.json": manifest}, overwrite=True)
    if index == first:
        print("publishing", flush=True)  # one run is out: kill from here on
"""


def assert_consistent(root: Path) -> None:
    """Every visible run is whole (data matches its manifest); latest resolves."""
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue  # hidden staging left by a kill: readers never see it
        if entry.name == LATEST_LINK:
            assert entry.is_symlink() and entry.resolve().parent == root.resolve()
            assert entry.resolve().is_dir(), "latest dangles"
            continue
        assert sorted(p.name for p in entry.iterdir()) == ["data.bin", "manifest.json"]
        manifest = json.loads((entry / "manifest.json").read_text())
        assert hashlib.sha256((entry / "data.bin").read_bytes()).hexdigest() == manifest["sha256"]


def test_killing_the_writer_at_random_moments_never_leaves_a_partial_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(20)
    root = tmp_path / "published"
    for attempt in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(attempt * 40)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline().strip() == "publishing"
        time.sleep(float(rng.uniform(0.0, 0.3)))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert_consistent(root)
    remove_stale_staging(root, older_than=0)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert_consistent(root)
    assert (root / "run-000").is_dir()  # overwritten again and again, never lost
