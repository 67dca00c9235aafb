"""Stage files on a local folder or any fsspec URI: written whole, read only when unchanged."""

from __future__ import annotations

from pathlib import Path

import fsspec
import polars as pl
import pytest

from fairdistill.models.errors import CheckpointError
from fairdistill.tasks.services.storage import (
    Ref,
    exists,
    join_uri,
    read_bytes,
    read_parquet,
    read_unverified,
    remove,
    sha256_bytes,
    write_bytes,
    write_parquet,
)


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path, memory_root: str) -> str:
    return str(tmp_path / "work") if request.param == "local" else memory_root


def test_uris_join_with_slashes_whatever_the_root() -> None:
    assert join_uri("s3://bucket/work/", "run", "x.parquet") == "s3://bucket/work/run/x.parquet"
    assert join_uri("/srv/work", "/run/") == "/srv/work/run"


def test_a_written_file_reads_back_with_its_digest(root: str) -> None:
    ref = write_bytes(join_uri(root, "run", "model.bin"), b"weights")
    assert ref.sha256 == sha256_bytes(b"weights")
    assert exists(ref.uri) and read_bytes(ref) == b"weights"


def test_a_frame_round_trips_through_parquet(root: str) -> None:
    frame = pl.DataFrame({"age": [31, 47], "sex": ["female", "male"]})
    ref = write_parquet(join_uri(root, "train.parquet"), frame)
    assert read_parquet(ref).equals(frame)


def test_a_changed_file_is_refused(root: str) -> None:
    ref = write_bytes(join_uri(root, "codec.json"), b"{}")
    with fsspec.open(ref.uri, "wb") as stream:
        stream.write(b"{ }")
    with pytest.raises(CheckpointError) as caught:
        read_bytes(ref)
    assert caught.value.rule == "reference-digest" and caught.value.file == ref.uri


def test_a_missing_file_is_named_not_a_bare_os_error(root: str) -> None:
    ref = Ref(uri=join_uri(root, "gone.parquet"), sha256=sha256_bytes(b""))
    with pytest.raises(CheckpointError) as caught:
        read_bytes(ref)
    assert caught.value.rule == "reference-exists" and caught.value.file == ref.uri
    assert read_unverified(ref.uri) is None


def test_remove_deletes_and_tolerates_nothing_there(root: str) -> None:
    ref = write_bytes(join_uri(root, "checkpoint.sha256"), b"abc")
    remove(ref.uri)
    remove(ref.uri)
    assert not exists(ref.uri)


def test_a_local_write_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    write_bytes(str(tmp_path / "run" / "a.bin"), b"1")
    write_bytes(f"file://{tmp_path}/run/a.bin", b"2")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["a.bin"]
    assert (tmp_path / "run" / "a.bin").read_bytes() == b"2"
