"""Weights and priors stored on any fsspec URI, checked when read back."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

from fairdistill.models.checkpoint import load_arrays, load_state, save_state
from fairdistill.models.errors import CheckpointError
from fairdistill.models.networks import MLPEncoder
from fairdistill.tasks.services.model_store import (
    load_arrays_from,
    load_module,
    save_arrays_to,
    save_module,
)
from fairdistill.tasks.services.storage import join_uri, read_bytes
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
