"""Weights, priors and epoch checkpoints stored on any fsspec URI, checked when read back."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

from fairdistill.models.checkpoint import load_arrays, load_state, save_state, state_to_bytes
from fairdistill.models.errors import CheckpointError
from fairdistill.models.networks import MLPEncoder
from fairdistill.tasks.services.model_store import (
    EpochCheckpoint,
    load_arrays_from,
    load_module,
    save_arrays_to,
    save_module,
)
from fairdistill.tasks.services.storage import Ref, exists, join_uri, read_bytes
from fairdistill.tasks.services.tracking import StageContext


def context_on(root: str) -> StageContext:
    return StageContext(
        tracking_uri="sqlite:///unused.db",
        experiment_id="0",
        parent_run_id="run",
        work_uri=join_uri(root, "work", "run"),
        checkpoint_root=join_uri(root, "checkpoints"),
    )


def encoder() -> MLPEncoder:
    torch.manual_seed(0)
    return MLPEncoder(6, 2, [8], 3)


def test_a_module_saved_to_memory_loads_back_with_the_same_outputs(memory_root: str) -> None:
    original = encoder().eval()
    ref = save_module(context_on(memory_root), "teacher", original)
    assert ref.uri == f"{memory_root}/work/run/teacher.safetensors"
    loaded = load_module(ref).eval()
    inputs = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    condition = torch.zeros(4, 2)
    assert torch.equal(original(inputs, condition)[0], loaded(inputs, condition)[0])


def test_the_bytes_are_those_of_a_local_save(tmp_path: Path, memory_root: str) -> None:
    """One format wherever it is stored: the local checkpoint reader reads a remote save."""
    module = encoder()
    ref = save_module(context_on(memory_root), "student", module)
    local = tmp_path / "student.safetensors"
    digest = save_state(local, module.state_dict(), {"architecture": module.architecture()})
    assert digest == ref.sha256 and local.read_bytes() == read_bytes(ref)
    _, metadata = load_state(local, expected_sha256=ref.sha256)
    assert metadata["architecture"] == module.architecture()


def test_a_tampered_remote_model_is_refused(memory_root: str) -> None:
    ref = save_module(context_on(memory_root), "teacher", encoder())
    payload = bytearray(read_bytes(ref))
    payload[-1] ^= 0x01
    with fsspec.open(ref.uri, "wb") as stream:
        stream.write(bytes(payload))
    with pytest.raises(CheckpointError) as caught:
        load_module(ref)
    assert caught.value.rule == "checkpoint-sha256" and caught.value.file == ref.uri


def test_a_prior_round_trips_and_reads_like_a_local_array_file(
    tmp_path: Path, memory_root: str
) -> None:
    arrays = {"means": np.arange(6, dtype=np.float64).reshape(2, 3), "weights": np.ones(2)}
    ref = save_arrays_to(join_uri(memory_root, "prior.safetensors"), arrays, {"kind": "prior"})
    loaded, metadata = load_arrays_from(ref)
    assert metadata == {"kind": "prior"}
    assert all(np.array_equal(loaded[name], arrays[name]) for name in arrays)
    local = tmp_path / "prior.safetensors"
    local.write_bytes(read_bytes(ref))
    assert np.array_equal(load_arrays(local, ref.sha256)[0]["means"], arrays["means"])


def test_an_epoch_checkpoint_on_memory_saves_loads_and_clears(memory_root: str) -> None:
    checkpoint = EpochCheckpoint(join_uri(memory_root, "checkpoints", "key"), "train_teacher")
    assert checkpoint.load() is None
    tensors = {"weight": torch.arange(4.0)}
    checkpoint.save(0, {"weight": torch.zeros(4)})
    checkpoint.save(1, tensors)
    epoch, loaded = checkpoint.load()  # type: ignore[misc]
    assert epoch == 1 and torch.equal(loaded["weight"], tensors["weight"])
    checkpoint.clear()
    assert checkpoint.load() is None
    assert not exists(checkpoint.uri) and not exists(checkpoint.digest_uri)


def test_a_checkpoint_changed_after_its_digest_is_refused(memory_root: str) -> None:
    checkpoint = EpochCheckpoint(join_uri(memory_root, "checkpoints", "key"), "distill_student")
    checkpoint.save(3, {"weight": torch.ones(2)})
    with fsspec.open(checkpoint.uri, "wb") as stream:
        stream.write(state_to_bytes({"weight": torch.zeros(2)}, {"epoch": 3}))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load()
    assert caught.value.rule == "checkpoint-sha256"


def test_checkpoints_are_keyed_by_input_under_the_checkpoint_root(memory_root: str) -> None:
    context = context_on(memory_root)
    train = Ref(uri=join_uri(memory_root, "train.parquet"), sha256="a" * 64)
    first = EpochCheckpoint.for_stage(context, "train_teacher", train)
    moved = EpochCheckpoint.for_stage(
        context, "train_teacher", train.model_copy(update={"uri": "x"})
    )
    changed = EpochCheckpoint.for_stage(context, "train_teacher", Ref(uri="x", sha256="b" * 64))
    assert first.uri.startswith(f"{memory_root}/checkpoints/")
    assert first.uri.endswith("/train_teacher.safetensors")
    assert first.uri == moved.uri != changed.uri
