from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fairdistill.models.checkpoint import (
    file_sha256,
    load_arrays,
    load_state,
    save_arrays,
    save_state,
)
from fairdistill.models.errors import CheckpointError


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, str, torch.nn.Module]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "teacher.safetensors"
    sha = save_state(path, module.state_dict(), {"epoch": 3, "layers": [4, 8, 2]})
    return path, sha, module


def test_round_trip_restores_tensors_and_metadata(saved: tuple[Path, str, torch.nn.Module]):
    path, sha, module = saved
    tensors, metadata = load_state(path, expected_sha256=sha)

    assert metadata == {"epoch": 3, "layers": [4, 8, 2]}
    assert sha == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    restored = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    restored.load_state_dict(tensors)
    probe = torch.randn(5, 4)
    assert torch.equal(restored(probe), module(probe))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_shared_and_non_contiguous_tensors_are_stored(tmp_path: Path):
    weight = torch.arange(12.0).reshape(3, 4)
    tensors = {"encoder": weight, "decoder": weight, "transposed": weight.T}
    sha = save_state(tmp_path / "tied.safetensors", tensors, {})
    loaded, metadata = load_state(tmp_path / "tied.safetensors", sha)

    assert metadata == {}
    assert torch.equal(loaded["decoder"], weight) and torch.equal(loaded["transposed"], weight.T)


def test_tampered_byte_is_refused(saved: tuple[Path, str, torch.nn.Module]):
    path, sha, _ = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # inside the tensor data: still well-formed safetensors
    path.write_bytes(bytes(data))

    load_state(path)  # structure alone cannot tell, which is why the sha is recorded
    with pytest.raises(CheckpointError, match="changed since it was written") as error:
        load_state(path, expected_sha256=sha)
    assert error.value.rule == "checkpoint-sha256" and error.value.hint


def test_wrong_sha_is_refused(saved: tuple[Path, str, torch.nn.Module]):
    path, _, _ = saved
    with pytest.raises(CheckpointError, match="sha256"):
        load_state(path, expected_sha256="0" * 64)


@pytest.mark.parametrize("keep", [0, 5, 40, -4])
def test_truncated_file_is_refused(saved: tuple[Path, str, torch.nn.Module], keep: int):
    path, _, _ = saved
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(CheckpointError, match="not a valid safetensors") as error:
        load_state(path)
    assert error.value.rule == "checkpoint-format"


def test_pickle_file_is_refused(tmp_path: Path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_state(path)


def test_missing_file_is_refused(tmp_path: Path):
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_state(tmp_path / "absent.safetensors")


def test_overwrite_replaces_the_file_atomically(saved: tuple[Path, str, torch.nn.Module]):
    path, first_sha, _ = saved
    second_sha = save_state(path, {"w": torch.zeros(2)}, {"epoch": 4})

    assert second_sha != first_sha
    tensors, metadata = load_state(path, second_sha)
    assert list(tensors) == ["w"] and metadata == {"epoch": 4}
    assert len(list(path.parent.iterdir())) == 1


def test_arrays_round_trip_keeps_dtypes(tmp_path: Path):
    arrays = {
        "weights": np.array([0.25, 0.75]),
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "codes": np.ones((3, 2), dtype=np.float32),
    }
    sha = save_arrays(tmp_path / "nested" / "prior.safetensors", arrays, {"components": 2})
    loaded, metadata = load_arrays(tmp_path / "nested" / "prior.safetensors", sha)

    assert metadata == {"components": 2}
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
