"""Publish a run folder atomically: a reader, or a crash at any moment, sees all or nothing.

The folder is assembled under a hidden temporary name in the output root and renamed into
place in one step. The ``latest`` pointer is a symlink swapped with an atomic rename, so it
never dangles. A process killed mid-publish can leave only hidden staging entries behind;
the next publish into the same root removes those older than :data:`STALE_STAGING_SECONDS`
and puts back a run folder that a killed overwrite had set aside.

Plain filesystem code, without Prefect or MLflow, so it can be tested (and killed) alone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from fairdistill.models.errors import OutputError

LATEST_LINK = "latest"
PARTIAL_MARKER = ".partial-"
REPLACED_MARKER = ".replaced-"
# A publish holds its staging folder for seconds; one this old was left by a killed run
# (a younger one may belong to a run publishing right now into the same root).
STALE_STAGING_SECONDS = 3600


def check_output_location(output_root: str, run_name: str, *, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be clobbered.

    It creates nothing: a run that fails later leaves the output location as it was.
    """
    root = Path(output_root).resolve()
    existing = _nearest_existing(root)
    if not existing.is_dir():
        raise OutputError(
            f"The output folder cannot be created: {existing} is a file, not a folder",
            file=str(root),
            rule="output-writable",
            hint="choose another folder with --output",
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OutputError(
            f"The output folder cannot be written ({error.strerror or error} in {existing})",
            file=str(root),
            rule="output-writable",
            hint="choose a writable folder with --output, or fix its permissions",
        ) from error
    if (root / run_name).exists() and not overwrite:
        raise OutputError(
            f"A published run named '{run_name}' already exists",
            file=str(root / run_name),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _switch_latest(root: Path, run_name: str) -> None:
    # Unique per call: two runs (or two flows in one process) may publish at once.
    temporary = root / f".{LATEST_LINK}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    temporary.symlink_to(run_name, target_is_directory=True)
    os.replace(temporary, root / LATEST_LINK)


def _is_staging(name: str) -> bool:
    if not name.startswith("."):
        return False
    latest_temporary = name.startswith(f".{LATEST_LINK}.") and name.endswith(".tmp")
    return PARTIAL_MARKER in name or REPLACED_MARKER in name or latest_temporary


def _last_change(entry: Path) -> float:
    """Newest mtime of an entry and, for a folder, of the files in it (a file being
    written changes its own mtime, not its folder's)."""
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [child.lstat().st_mtime for child in entry.iterdir()]
    return max(times)


def remove_stale_staging(
    root: Path, *, older_than: float = STALE_STAGING_SECONDS, now: float | None = None
) -> list[str]:
    """Clear what killed publishes left in ``root``; return the names handled.

    A run folder set aside by an overwrite that was killed before the new folder took its
    place is put back, not deleted: nothing published is ever lost.
    """
    now = time.time() if now is None else now
    handled: list[str] = []
    for entry in sorted(root.iterdir()):
        try:
            if not _is_staging(entry.name) or now - _last_change(entry) < older_than:
                continue
            run_name = entry.name[1:].rsplit(REPLACED_MARKER, 1)[0]
            if REPLACED_MARKER in entry.name and not (root / run_name).exists():
                os.replace(entry, root / run_name)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # gone already (another run cleaned it) or not ours to remove
        handled.append(entry.name)
    return handled


def _write_synced(path: Path, content: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the names in ``folder`` (a rename, a new file) survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_staging(root: Path, run_name: str) -> Path:
    # os.mkdir honours the umask, so the published folder gets the usual permissions
    # (tempfile.mkdtemp would make it readable by its owner only).
    staging = root / f".{run_name}{PARTIAL_MARKER}{secrets.token_hex(6)}"
    os.mkdir(staging)
    return staging


def move_into_place(staging: Path, final: Path, *, overwrite: bool) -> None:
    """Rename the complete staging folder to ``final``; a replaced folder is retired first."""
    if overwrite and final.exists():
        retired = final.parent / f".{final.name}{REPLACED_MARKER}{secrets.token_hex(6)}"
        os.replace(final, retired)
        os.replace(staging, final)
        shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        os.rename(staging, final)
    except OSError as error:
        # Another run published the same name since check_output_location looked.
        raise OutputError(
            f"A published run named '{final.name}' appeared while this run was publishing",
            file=str(final),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        ) from error


def write_run_folder(
    root: Path, run_name: str, files: dict[str, bytes], *, overwrite: bool
) -> Path:
    """Publish ``files`` as ``root/run_name`` in one rename and point ``latest`` at it."""
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    final = root / run_name
    if final.exists() and not overwrite:
        raise OutputError(
            f"A published run named '{run_name}' already exists",
            file=str(final),
            rule="output-no-overwrite",
            hint="choose another --run-name, or pass --overwrite to replace it",
        )
    staging = _make_staging(root, run_name)
    try:
        for name, content in files.items():
            _write_synced(staging / name, content)
        _sync_folder(staging)
        move_into_place(staging, final, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _switch_latest(root, run_name)
    _sync_folder(root)
    return final
