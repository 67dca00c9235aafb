"""Epoch checkpoints: the training state of a stage after its latest epoch, to resume from.

Each saved epoch is a pair of files, the checkpoint ``<stage>.epoch-<N>.safetensors`` and,
written after it, its digest ``<stage>.epoch-<N>.sha256`` (N counts epochs done, from 1).
The pairs of earlier epochs are removed only once the new pair is whole, so a kill at any
moment leaves the last whole pair in place.

A pair that does not check out (a checkpoint without its digest, a digest that does not
match, a truncated file, one that is not a training state) is never fatal: it is moved into
``set-aside/`` beside the checkpoints, named in a warning, and the stage resumes from the
newest pair that checks out, or trains from the first epoch. A rerun never needs a person
to clear a checkpoint by hand.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from torch import Tensor

from fairdistill.models.checkpoint import state_from_bytes, state_to_bytes, verify_sha256
from fairdistill.models.errors import CheckpointError
from fairdistill.models.training import TrainingState
from fairdistill.tasks.services import progress
from fairdistill.tasks.services.caching import stage_key
from fairdistill.tasks.services.storage import (
    join_uri,
    list_names,
    move,
    read_unverified,
    remove,
    write_bytes,
)
from fairdistill.tasks.services.tracking import StageContext

SET_ASIDE_FOLDER = "set-aside"
_CHECKPOINT = "safetensors"
_DIGEST = "sha256"


@dataclass(frozen=True)
class SavedEpoch:
    """The files of one saved epoch; ``done`` counts the epochs trained, from 1."""

    done: int
    checkpoint: str | None
    digest: str | None


class EpochCheckpoint:
    """The latest training state of a stage, saved after every epoch to resume after a crash.

    The folder (local or any fsspec URI) is keyed by the stage's cache key, so only a rerun
    with the same input, config and code resumes from it. A fresh run (``--fresh``) never
    resumes: it removes what an earlier attempt left and trains from the first epoch.
    """

    def __init__(self, folder: str, stage: str, *, fresh: bool = False) -> None:
        self.folder = folder
        self.stage = stage
        self.fresh = fresh
        self.resumed_from_epoch: int | None = None
        self._name = re.compile(rf"^{re.escape(stage)}\.epoch-(\d+)\.({_CHECKPOINT}|{_DIGEST})$")

    @classmethod
    def for_stage(cls, context: StageContext, stage: str, *inputs: Any) -> EpochCheckpoint:
        """The checkpoint of ``stage`` run on ``inputs`` (its parameters, in order)."""
        key = stage_key(stage, {str(index): value for index, value in enumerate(inputs)})
        folder = join_uri(context.checkpoint_root, key[:32])
        return cls(folder, stage, fresh=not context.reuse_stages)

    def file_uri(self, done: int, kind: str) -> str:
        """Where epoch ``done``'s checkpoint ("safetensors") or digest ("sha256") goes."""
        return join_uri(self.folder, f"{self.stage}.epoch-{done:04d}.{kind}")

    def resume(self) -> dict[str, Tensor] | None:
        """The saved state to continue from, if an earlier attempt left one that checks out."""
        if self.fresh:
            if self.saved():
                _logger().info("%s: fresh run, earlier checkpoints removed", self.stage)
            self.clear()
            return None
        saved = self.load()
        if saved is None:
            return None
        epoch, tensors = saved
        self.resumed_from_epoch = epoch + 1
        _logger().info("resuming %s from epoch %d", self.stage, epoch + 1)
        # Counted from 0, as the training loop counts: the index of the last epoch done.
        mlflow.log_param("resumed_after_epoch", epoch)
        progress.stage_resumed(self.stage, epoch=epoch + 1)
        return tensors

    def load(self) -> tuple[int, dict[str, Tensor]] | None:
        """(epoch index, tensors) of the newest pair that checks out; bad ones are set aside."""
        set_aside: list[str] = []
        problems: list[str] = []
        found = None
        for saved in sorted(self.saved(), key=lambda item: item.done, reverse=True):
            try:
                found = self._read(saved)
                break
            except CheckpointError as error:
                moved = self._set_aside(saved)
                if moved:
                    reason = error.message[:1].lower() + error.message[1:]
                    problems.append(
                        f"epoch {saved.done}: {reason}; set aside as {', '.join(moved)}"
                    )
                    set_aside += moved
        if problems:
            self._report_set_aside(problems, set_aside, None if found is None else found[0] + 1)
        return found

    def save(self, epoch: int, tensors: dict[str, Tensor]) -> None:
        """Keep the state after epoch index ``epoch``; earlier epochs' pairs go once it is whole."""
        done = epoch + 1
        stored = write_bytes(
            self.file_uri(done, _CHECKPOINT), state_to_bytes(tensors, {"epoch": epoch})
        )
        write_bytes(self.file_uri(done, _DIGEST), stored.sha256.encode("utf-8"))
        for saved in self.saved():
            if saved.done != done:
                self._remove(saved)

    def clear(self) -> None:
        for saved in self.saved():
            self._remove(saved)

    def saved(self) -> list[SavedEpoch]:
        """Every saved epoch found in the folder, whole or not, in no particular order."""
        files: dict[int, dict[str, str]] = {}
        for name in list_names(self.folder):
            match = self._name.match(name)
            if match:
                files.setdefault(int(match[1]), {})[match[2]] = join_uri(self.folder, name)
        return [
            SavedEpoch(done, kinds.get(_CHECKPOINT), kinds.get(_DIGEST))
            for done, kinds in files.items()
        ]

    def _read(self, saved: SavedEpoch) -> tuple[int, dict[str, Tensor]]:
        if saved.checkpoint is None:
            raise CheckpointError("a digest without its checkpoint", rule="checkpoint-pair")
        digest = read_unverified(saved.digest) if saved.digest else None
        if digest is None:
            raise CheckpointError(
                "a checkpoint without its digest (stopped while it was being saved)",
                rule="checkpoint-pair",
            )
        payload = read_unverified(saved.checkpoint)
        if payload is None:
            raise CheckpointError("the checkpoint vanished", rule="checkpoint-readable")
        verify_sha256(payload, digest.decode("utf-8", errors="replace").strip(), saved.checkpoint)
        tensors, metadata = state_from_bytes(payload, saved.checkpoint)
        epoch = metadata.get("epoch")
        if not isinstance(epoch, int) or epoch + 1 != saved.done:
            raise CheckpointError(f"the checkpoint says epoch {epoch!r}", rule="checkpoint-format")
        # Refused here rather than halfway into loading it into the model.
        TrainingState.from_tensors(tensors)
        return epoch, tensors

    def _set_aside(self, saved: SavedEpoch) -> list[str]:
        """Move the pair's files into ``set-aside/``; return where they went."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        moved = []
        for uri in (saved.digest, saved.checkpoint):
            if uri is None:
                continue
            target = join_uri(self.folder, SET_ASIDE_FOLDER, f"{uri.rsplit('/', 1)[-1]}.{stamp}")
            try:
                move(uri, target)
            except FileNotFoundError:
                continue  # removed meanwhile by an identical run saving its next epoch
            moved.append(target)
        return moved

    def _report_set_aside(
        self, problems: list[str], set_aside: list[str], resumes_from: int | None
    ) -> None:
        then = f"resuming from epoch {resumes_from}" if resumes_from else "training from epoch 1"
        _logger().warning(
            "%s: unusable checkpoint(s) (%s); %s. Delete what was set aside once you no longer "
            "need it",
            self.stage,
            "; ".join(problems),
            then,
        )
        if mlflow.active_run() is not None:
            mlflow.set_tag("fairdistill.checkpoints_set_aside", ", ".join(set_aside)[:5000])

    @staticmethod
    def _remove(saved: SavedEpoch) -> None:
        # Digest first: a crash in between leaves a checkpoint without digest, never trusted.
        for uri in (saved.digest, saved.checkpoint):
            if uri is not None:
                remove(uri)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The task's Prefect logger; a plain one when used outside a task (tools, tests)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
