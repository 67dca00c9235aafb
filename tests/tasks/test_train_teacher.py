"""The train_teacher stage: a stored, logged teacher with its epochs and latent probe."""

from __future__ import annotations

import mlflow
import pytest
import torch

from fairdistill.models.labeling import drawn_label_share
from fairdistill.models.stages import TrainingHooks, fit_teacher
from fairdistill.models.teacher import FairVAE, TeacherConfig
from fairdistill.tasks.services import epoch_checkpoint
from fairdistill.tasks.services.epoch_checkpoint import SET_ASIDE_FOLDER, EpochCheckpoint
from fairdistill.tasks.services.stage_outputs import load_teacher, load_training_table
from fairdistill.tasks.services.storage import Ref, join_uri, list_names, write_bytes
from fairdistill.tasks.services.tracking import stage_threads
from fairdistill.tasks.train_teacher import train_teacher

# Real task runs on the Prefect and MLflow of the test session (tests/tasks/conftest.py).
pytestmark = pytest.mark.slow


def test_the_teacher_is_stored_logged_and_its_training_recorded(
    stage_config, prepared, trained_teacher, stage_child_run
) -> None:
    model = load_teacher(trained_teacher)
    assert isinstance(model, FairVAE)
    assert trained_teacher.encoder_parameters < trained_teacher.parameters
    run = stage_child_run("train_teacher")
    assert run.info.status == "FINISHED"
    assert run.data.params["teacher.beta"] == str(stage_config.teacher.beta)
    assert run.data.params["device"] == "cpu"
    assert 0.0 <= run.data.metrics["probe_auroc.sex"] <= 1.0
    assert run.data.metrics["label_drawn_share"] == pytest.approx(
        float(model.label_model.drawn_share)
    )
    rows = len(load_training_table(prepared)[1])
    expected = drawn_label_share(rows, stage_config.teacher.criterion, None)
    assert run.data.metrics["label_drawn_share"] == pytest.approx(expected)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert len(history) == stage_config.teacher.epochs
    assert trained_teacher.mlflow_model_uri.startswith("models:/")


# ------------------------------------------------- a checkpoint torn by a kill, then a rerun
#
# Each test trains at a seed of its own: its rerun is then never served from the cache of
# another (they may reuse stages, as a rerun after a kill does).


class Killed(BaseException):
    """What SIGKILL does to a training process, raised where the test chooses."""


def torn_settings(stage_config) -> TeacherConfig:
    return stage_config.teacher.model_copy(update={"epochs": 4})


def straight_weights(stage_config, prepared, seed: int) -> dict[str, torch.Tensor]:
    """The weights of an uninterrupted training, as one stage thread computes them."""
    codec, table = load_training_table(prepared)
    with stage_threads(1):
        fitted = fit_teacher(codec, table, torn_settings(stage_config), seed=seed)
    return fitted.model.state_dict()


def killed_training(stage_config, context, prepared, seed: int, *, last_epoch: int) -> str:
    """Train, saving checkpoints as the stage does, until killed; return their folder.

    Killed after the checkpoint of epoch index ``last_epoch``, or earlier by a fault the
    test puts into the checkpoint's writes.
    """
    settings = torn_settings(stage_config)
    checkpoint = EpochCheckpoint.for_stage(
        context, "train_teacher", settings, seed, "cpu", prepared
    )

    def save_then_die_after_the_last(epoch: int, tensors: dict[str, torch.Tensor]) -> None:
        checkpoint.save(epoch, tensors)
        if epoch == last_epoch:
            raise Killed

    codec, table = load_training_table(prepared)
    with stage_threads(1), pytest.raises(Killed):
        fit_teacher(
            codec,
            table,
            settings,
            seed=seed,
            hooks=TrainingHooks(on_checkpoint=save_then_die_after_the_last),
        )
    return checkpoint.folder


def rerun(stage_config, context, prepared, seed: int):
    return train_teacher(torn_settings(stage_config), seed, "cpu", context, prepared)


def same_weights(trained, expected: dict[str, torch.Tensor]) -> bool:
    weights = load_teacher(trained).state_dict()
    return weights.keys() == expected.keys() and all(
        torch.equal(weights[name], expected[name]) for name in expected
    )


def spoil_the_digest(folder: str) -> None:
    """The digest no longer matches its checkpoint, as after an interrupted rewrite."""
    (digest,) = [name for name in list_names(folder) if name.endswith(".sha256")]
    write_bytes(join_uri(folder, digest), b"0" * 64)


def test_a_digest_that_does_not_match_is_set_aside_and_training_starts_again(
    stage_config, stage_context, prepared, stage_child_run
) -> None:
    seed = 101
    context = stage_context.model_copy(update={"reuse_stages": True})
    folder = killed_training(stage_config, context, prepared, seed, last_epoch=1)
    spoil_the_digest(folder)

    trained = rerun(stage_config, context, prepared, seed)

    assert same_weights(trained, straight_weights(stage_config, prepared, seed))
    assert trained.resumed_from_epoch is None
    set_aside = list_names(join_uri(folder, SET_ASIDE_FOLDER))
    assert sorted(name.split(".")[-2] for name in set_aside) == ["safetensors", "sha256"]
    tag = stage_child_run("train_teacher").data.tags["fairdistill.checkpoints_set_aside"]
    assert all(join_uri(folder, SET_ASIDE_FOLDER, name) in tag for name in set_aside)
    assert list_names(folder) == []  # the finished stage removed its checkpoints


def test_a_kill_between_checkpoint_and_digest_resumes_from_the_last_whole_one(
    stage_config, stage_context, prepared, stage_child_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = 102
    context = stage_context.model_copy(update={"reuse_stages": True})
    writes = 0

    def killed_before_the_third_digest(uri: str, data: bytes) -> Ref:
        nonlocal writes
        writes += 1
        if writes == 6:  # a checkpoint, then its digest, per epoch
            raise Killed
        return write_bytes(uri, data)

    with monkeypatch.context() as patch:
        patch.setattr(epoch_checkpoint, "write_bytes", killed_before_the_third_digest)
        folder = killed_training(stage_config, context, prepared, seed, last_epoch=3)

    trained = rerun(stage_config, context, prepared, seed)

    assert trained.resumed_from_epoch == 2
    assert stage_child_run("train_teacher").data.params["resumed_after_epoch"] == "1"
    assert same_weights(trained, straight_weights(stage_config, prepared, seed))
    (set_aside,) = list_names(join_uri(folder, SET_ASIDE_FOLDER))
    assert set_aside.startswith("train_teacher.epoch-0003.safetensors.")


def test_a_fresh_run_clears_a_torn_checkpoint_and_trains_from_the_first_epoch(
    stage_config, stage_context, prepared, stage_child_run
) -> None:
    seed = 103
    fresh = stage_context.model_copy(update={"reuse_stages": False})
    folder = killed_training(stage_config, fresh, prepared, seed, last_epoch=2)
    spoil_the_digest(folder)

    trained = rerun(stage_config, fresh, prepared, seed)

    assert same_weights(trained, straight_weights(stage_config, prepared, seed))
    assert trained.resumed_from_epoch is None
    assert "resumed_after_epoch" not in stage_child_run("train_teacher").data.params
    assert list_names(folder) == []
