"""References between stages: a URI plus the sha256 of what it points to.

Stages never hand each other frames or modules. A reference keeps Prefect's inputs
small and hashable, lets a stage run on another machine that reads the same storage
(any fsspec URI), and makes every intermediate auditable: a reader checks the digest
before trusting the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
from pydantic import BaseModel, ConfigDict

from fairdistill.models.errors import CheckpointError


class Ref(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    sha256: str

    @property
    def path(self) -> Path:
        """Local path of a file reference (plain path or file:// URI)."""
        return Path(self.uri.removeprefix("file://"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def join_uri(root: str, *names: str) -> str:
    """``root/name/...`` for a local folder or any fsspec URI (always ``/``-separated)."""
    return "/".join([root.rstrip("/"), *(name.strip("/") for name in names)])


def _filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(uri)


def exists(uri: str) -> bool:
    filesystem, path = _filesystem(uri)
    return bool(filesystem.exists(path))


def read_unverified(uri: str) -> bytes | None:
    """The bytes at ``uri``, or None when nothing is there.

    Only for files whose digest is kept elsewhere (a checkpoint's digest file) and checked
    by the caller; everything a stage hands on is read with :func:`read_bytes`.
    """
    try:
        with fsspec.open(uri, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def remove(uri: str) -> None:
    """Delete the file at ``uri``; nothing there is fine."""
    filesystem, path = _filesystem(uri)
    with contextlib.suppress(FileNotFoundError):
        filesystem.rm_file(path)


def list_names(folder: str) -> list[str]:
    """The names of the files directly in ``folder``, sorted; none when it does not exist."""
    filesystem, path = _filesystem(folder)
    try:
        entries = filesystem.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return sorted(
        str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        for entry in entries
        if entry.get("type") == "file"
    )


def move(source: str, target: str) -> None:
    """Move the file at ``source`` to ``target`` (a rename on a local disk)."""
    filesystem, path = _filesystem(source)
    _, target_path = _filesystem(target)
    if _is_local(source):
        Path(target_path).parent.mkdir(parents=True, exist_ok=True)
    filesystem.mv(path, target_path)


def write_bytes(uri: str, data: bytes) -> Ref:
    """Write atomically where the filesystem allows it (local: temp file, then rename)."""
    if _is_local(uri):
        path = Path(uri.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    else:
        # Object stores publish a whole object on close, which is atomic already.
        with fsspec.open(uri, "wb") as stream:
            stream.write(data)
    return Ref(uri=uri, sha256=sha256_bytes(data))


def read_bytes(ref: Ref) -> bytes:
    data = read_unverified(ref.uri)
    if data is None:
        raise CheckpointError(
            "A file an earlier stage wrote is missing",
            file=ref.uri,
            rule="reference-exists",
            hint="run again with fresh stages (--fresh, or reuse_stages: false); every "
            "machine of a run must read the same work root (FAIRDISTILL_WORK_URI)",
        )
    actual = sha256_bytes(data)
    if actual != ref.sha256:
        raise CheckpointError(
            f"Stored file changed since it was written (sha256 {actual[:12]}… expected "
            f"{ref.sha256[:12]}…)",
            file=ref.uri,
            rule="reference-digest",
            hint="rerun the stage that wrote it; never edit run files by hand",
        )
    return data


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    # Fixed writer settings so the same frame always gives the same bytes.
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=3, statistics=True)
    return buffer.getvalue()


def write_parquet(uri: str, frame: pl.DataFrame) -> Ref:
    return write_bytes(uri, parquet_bytes(frame))


def read_parquet(ref: Ref) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(read_bytes(ref)))


def write_json(uri: str, payload: Any) -> Ref:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return write_bytes(uri, text.encode("utf-8"))


def read_json(ref: Ref) -> Any:
    return json.loads(read_bytes(ref))


def write_text(uri: str, text: str) -> Ref:
    return write_bytes(uri, text.encode("utf-8"))
