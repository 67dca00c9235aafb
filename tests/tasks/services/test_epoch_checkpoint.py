"""Epoch checkpoints: a kill at any moment, or a damaged file, never blocks a rerun.

The faults are made here by hand, as a kill or a bad disk would leave them: a checkpoint
whose digest was never written, a digest that does not match, a truncated file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import fsspec
import pytest
import torch

from fairdistill.models.checkpoint import state_to_bytes
from fairdistill.models.training import TrainingState
from fairdistill.tasks.services import epoch_checkpoint as module
from fairdistill.tasks.services.epoch_checkpoint import SET_ASIDE_FOLDER, EpochCheckpoint
from fairdistill.tasks.services.storage import (
    Ref,
    exists,
    join_uri,
    list_names,
    read_unverified,
    sha256_bytes,
)
from fairdistill.tasks.services.tracking import StageContext

STAGE = "train_teacher"


def state(done: int) -> dict[str, torch.Tensor]:
    """A training state after ``done`` epochs, as the training loop hands it over."""
    generator = torch.Generator().manual_seed(done)
    return TrainingState(
        epoch=done,
        model={"weight": torch.full((3,), float(done))},
        optimizer={},
        shuffle_rng=generator.get_state(),
        noise_rng=generator.get_state(),
    ).to_tensors()


@pytest.fixture
def checkpoint(memory_root: str) -> EpochCheckpoint:
    return EpochCheckpoint(join_uri(memory_root, "checkpoints", "key"), STAGE)


def write(uri: str, payload: bytes) -> None:
    with fsspec.open(uri, "wb") as stream:
        stream.write(payload)


def names(checkpoint: EpochCheckpoint) -> list[str]:
    return list_names(checkpoint.folder)


def set_aside(checkpoint: EpochCheckpoint) -> list[str]:
    return list_names(join_uri(checkpoint.folder, SET_ASIDE_FOLDER))


def test_each_epoch_replaces_the_last_and_clear_removes_it(checkpoint: EpochCheckpoint) -> None:
    assert checkpoint.load() is None
    checkpoint.save(0, state(1))
    checkpoint.save(1, state(2))
    assert names(checkpoint) == [f"{STAGE}.epoch-0002.safetensors", f"{STAGE}.epoch-0002.sha256"]
    epoch, tensors = checkpoint.load()  # type: ignore[misc]
    assert epoch == 1 and torch.equal(tensors["model/weight"], state(2)["model/weight"])
    checkpoint.clear()
    assert checkpoint.load() is None and names(checkpoint) == []


def _without_digest(checkpoint: EpochCheckpoint) -> None:
    write(checkpoint.file_uri(2, "safetensors"), state_to_bytes(state(2), {"epoch": 1}))


def _digest_does_not_match(checkpoint: EpochCheckpoint) -> None:
    # The old two-write tear: the checkpoint was rewritten, its digest is the earlier one's.
    write(checkpoint.file_uri(2, "safetensors"), state_to_bytes(state(2), {"epoch": 1}))
    write(checkpoint.file_uri(2, "sha256"), b"0" * 64)


def _truncated(checkpoint: EpochCheckpoint) -> None:
    payload = state_to_bytes(state(2), {"epoch": 1})
    write(checkpoint.file_uri(2, "safetensors"), payload[: len(payload) // 2])
    write(checkpoint.file_uri(2, "sha256"), sha256_bytes(payload).encode())


def _truncated_with_its_own_digest(checkpoint: EpochCheckpoint) -> None:
    payload = state_to_bytes(state(2), {"epoch": 1})[:100]
    write(checkpoint.file_uri(2, "safetensors"), payload)
    write(checkpoint.file_uri(2, "sha256"), sha256_bytes(payload).encode())


def _not_a_training_state(checkpoint: EpochCheckpoint) -> None:
    payload = state_to_bytes({"weight": torch.ones(2)}, {"epoch": 1})
    write(checkpoint.file_uri(2, "safetensors"), payload)
    write(checkpoint.file_uri(2, "sha256"), sha256_bytes(payload).encode())


def _digest_alone(checkpoint: EpochCheckpoint) -> None:
    write(checkpoint.file_uri(2, "sha256"), b"f" * 64)


FAULTS: dict[str, Callable[[EpochCheckpoint], None]] = {
    "checkpoint without digest": _without_digest,
    "digest does not match": _digest_does_not_match,
    "truncated file": _truncated,
    "truncated file with its own digest": _truncated_with_its_own_digest,
    "not a training state": _not_a_training_state,
    "digest alone": _digest_alone,
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_checkpoint_is_set_aside_and_the_last_good_one_resumed(
    checkpoint: EpochCheckpoint, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint.save(0, state(1))
    FAULTS[fault](checkpoint)
    bad = [name for name in names(checkpoint) if ".epoch-0002." in name]

    with caplog.at_level(logging.WARNING, logger=module.__name__):
        epoch, tensors = checkpoint.load()  # type: ignore[misc]

    assert epoch == 0 and torch.equal(tensors["model/weight"], state(1)["model/weight"])
    assert [name for name in names(checkpoint) if ".epoch-0002." in name] == []
    moved = set_aside(checkpoint)
    assert sorted(name.rsplit(".", 1)[0] for name in moved) == bad
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert all(join_uri(checkpoint.folder, SET_ASIDE_FOLDER, name) in warnings for name in moved)
    assert "unusable checkpoint(s) (epoch 2: " in warnings and "resuming from epoch 1" in warnings
    # The next epoch saved replaces the pair resumed from; what was set aside stays.
    checkpoint.save(1, state(2))
    assert checkpoint.load()[0] == 1  # type: ignore[index]
    assert set_aside(checkpoint) == moved


def test_with_no_good_checkpoint_the_stage_starts_again(
    checkpoint: EpochCheckpoint, caplog: pytest.LogCaptureFixture
) -> None:
    _digest_does_not_match(checkpoint)
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        assert checkpoint.load() is None
    assert names(checkpoint) == [] and len(set_aside(checkpoint)) == 2
    assert "training from epoch 1" in caplog.text


class Killed(BaseException):
    """What a kill does to the process saving a checkpoint, at the moment a test picks."""


class KilledAfter:
    """Lets ``limit`` file operations through, then kills the save at the next one."""

    def __init__(self, limit: int) -> None:
        self.limit, self.done = limit, 0

    def __call__(self, operation: Callable[..., object]) -> Callable[..., object]:
        def run(*arguments: object) -> object:
            if self.done == self.limit:
                raise Killed
            self.done += 1
            return operation(*arguments)

        return run


def test_a_kill_at_any_moment_of_a_save_leaves_a_whole_checkpoint(
    checkpoint: EpochCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop a save after each of its writes and removals in turn, as a kill would."""
    killed = 0
    for limit in range(10):
        checkpoint.clear()
        checkpoint.save(0, state(1))
        kill = KilledAfter(limit)
        with monkeypatch.context() as patch:
            patch.setattr(module, "write_bytes", kill(module.write_bytes))
            patch.setattr(module, "remove", kill(module.remove))
            try:
                checkpoint.save(1, state(2))
            except Killed:
                killed += 1
        loaded = checkpoint.load()
        assert loaded is not None and loaded[0] in (0, 1), limit
    assert killed == 4  # two writes, two removals: every moment was tried


def test_a_fresh_run_removes_checkpoints_and_starts_from_the_first_epoch(
    checkpoint: EpochCheckpoint,
) -> None:
    checkpoint.save(2, state(3))
    fresh = EpochCheckpoint(checkpoint.folder, STAGE, fresh=True)
    assert fresh.resume() is None and fresh.resumed_from_epoch is None
    assert names(checkpoint) == []


def test_checkpoints_are_keyed_by_input_under_the_checkpoint_root(memory_root: str) -> None:
    context = StageContext(
        tracking_uri="sqlite:///unused.db",
        experiment_id="0",
        parent_run_id="run",
        work_uri=join_uri(memory_root, "work", "run"),
        checkpoint_root=join_uri(memory_root, "checkpoints"),
    )
    train = Ref(uri=join_uri(memory_root, "train.parquet"), sha256="a" * 64)
    first = EpochCheckpoint.for_stage(context, STAGE, train)
    moved = EpochCheckpoint.for_stage(context, STAGE, train.model_copy(update={"uri": "x"}))
    changed = EpochCheckpoint.for_stage(context, STAGE, Ref(uri="x", sha256="b" * 64))
    assert first.folder.startswith(f"{memory_root}/checkpoints/")
    assert first.file_uri(1, "safetensors").endswith(f"/{STAGE}.epoch-0001.safetensors")
    assert first.folder == moved.folder != changed.folder
    assert not first.fresh
    fresh = context.model_copy(update={"reuse_stages": False})
    assert EpochCheckpoint.for_stage(fresh, STAGE, train).fresh


def test_a_digest_is_the_checkpoint_bytes_sha256(checkpoint: EpochCheckpoint) -> None:
    checkpoint.save(0, state(1))
    payload = read_unverified(checkpoint.file_uri(1, "safetensors"))
    assert payload is not None and exists(checkpoint.file_uri(1, "sha256"))
    assert read_unverified(checkpoint.file_uri(1, "sha256")) == sha256_bytes(payload).encode()
