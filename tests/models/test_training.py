"""The shared training machinery on a tiny linear model: devices, seeding, the table tensors,
the epoch loop's batches, callbacks, checkpoints and resuming."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import Tensor, nn

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.errors import CheckpointError, ConfigError
from fairdistill.models.training import (
    LoopSettings,
    TrainingState,
    check_sensitive_levels,
    encoder_condition,
    joint_group_index,
    joint_one_hot,
    resolve_device,
    run_training,
    seeded_module,
    table_tensors,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
ROWS = 10
SETTINGS = LoopSettings(epochs=3, batch_size=4, learning_rate=0.05, seed=5)
X = torch.linspace(-1.0, 1.0, ROWS * 3).reshape(ROWS, 3)
Y = X.sum(dim=1, keepdim=True)


def linear() -> nn.Linear:
    return seeded_module(lambda: nn.Linear(3, 1), seed=0)


class Regression:
    """A noisy least-squares step that remembers the rows of every batch it was given."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.batches: list[list[int]] = []

    def __call__(self, rows: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        self.batches.append(rows.tolist())
        noise = torch.randn(len(rows), 1, generator=generator)
        loss = ((self.model(X[rows]) + 0.1 * noise - Y[rows]) ** 2).mean()
        return {"loss": loss, "batch_rows": torch.tensor(float(len(rows)))}


def train(
    model: nn.Module, settings: LoopSettings = SETTINGS, n_rows: int = ROWS, **hooks
) -> tuple[list[dict[str, float]], Regression]:
    step = Regression(model)
    history = run_training(
        model, list(model.parameters()), step, n_rows=n_rows, settings=settings, device=CPU, **hooks
    )
    return history, step


def without_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    return all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


# ---------------------------------------------------------------- devices and seeding


def test_auto_picks_cuda_only_when_it_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_an_explicit_cuda_request_without_cuda_is_refused(
    monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device") as caught:
        resolve_device(device)
    assert caught.value.rule == "device"


def test_cpu_is_taken_as_asked() -> None:
    assert resolve_device("cpu") == CPU


def test_seeded_weights_depend_on_the_seed_alone_and_leave_the_global_state() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = seeded_module(lambda: nn.Linear(4, 2), seed=1)
    assert torch.equal(torch.rand(3), expected)
    assert same_weights(first, seeded_module(lambda: nn.Linear(4, 2), seed=1))
    assert not same_weights(first, seeded_module(lambda: nn.Linear(4, 2), seed=2))


# ---------------------------------------------------------------- a table as tensors


def test_joint_group_index_is_a_mixed_radix_code() -> None:
    sensitive = np.array([[0, 0], [0, 2], [1, 0], [1, 2]])
    np.testing.assert_array_equal(joint_group_index(sensitive, [2, 3]), [0, 2, 3, 5])


def test_joint_one_hot_covers_the_groups_present_only() -> None:
    sensitive = np.array([[1, 2], [0, 0], [1, 2], [1, 0]])
    one_hot = joint_one_hot(sensitive, [2, 3])
    assert one_hot.dtype == np.float32 and one_hot.shape == (4, 3)
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    # Rows of the same intersection share a column, in the order of their codes.
    np.testing.assert_array_equal(one_hot.argmax(axis=1), [2, 0, 2, 1])
    assert joint_one_hot(np.zeros((0, 2), dtype=np.int64), [2, 3]).shape == (0, 1)


def test_encoder_condition_is_the_label_one_hot_then_the_sensitive_one_hot() -> None:
    condition = encoder_condition(np.array([1, 0]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_array_equal(condition, [[0, 1, 0, 1], [1, 0, 1, 0]])
    assert condition.dtype == np.float32


def table(sensitive: list[list[int]]) -> EncodedTable:
    rows = len(sensitive)
    return EncodedTable(
        features=np.arange(rows * 2, dtype=np.float64).reshape(rows, 2),
        sensitive=np.array(sensitive, dtype=np.int64).reshape(rows, -1),
        label=np.arange(rows, dtype=np.int64) % 2,
    )


def test_table_tensors_hold_every_form_the_models_read() -> None:
    tensors = table_tensors(table([[0, 1], [1, 0], [1, 1]]), [2, 2], CPU)
    assert len(tensors) == 3
    assert tensors.features.dtype == torch.float32 and tensors.features.shape == (3, 2)
    torch.testing.assert_close(tensors.label, torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(
        tensors.sensitive, torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1]])
    )
    assert tensors.sensitive_joint.shape == (3, 3)
    torch.testing.assert_close(tensors.condition[:, :2], torch.tensor([[1.0, 0], [0, 1], [1, 0]]))
    torch.testing.assert_close(tensors.condition[:, 2:], tensors.sensitive)


@pytest.mark.parametrize(
    ("sensitive", "levels", "message"),
    [
        ([[0], [1]], [2, 2], "level counts"),
        ([[0], [2]], [2], "outside the declared levels"),
        ([[0], [-1]], [2], "outside the declared levels"),
    ],
)
def test_sensitive_codes_that_do_not_fit_the_levels_are_refused(
    sensitive: list[list[int]], levels: list[int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_sensitive_levels(table(sensitive), levels)


def test_an_empty_table_fits_any_levels() -> None:
    empty = EncodedTable(
        features=np.zeros((0, 2), dtype=np.float32),
        sensitive=np.zeros((0, 1), dtype=np.int64),
        label=np.zeros(0, dtype=np.int64),
    )
    check_sensitive_levels(empty, [3])


# ---------------------------------------------------------------- the epoch loop


def test_the_loop_is_deterministic_for_a_seed_and_leaves_eval_mode() -> None:
    first, second, other = linear(), linear(), linear()
    history, _ = train(first)
    again, _ = train(second)
    train(other, LoopSettings(epochs=3, batch_size=4, learning_rate=0.05, seed=6))
    assert same_weights(first, second) and not same_weights(first, other)
    assert without_timing(history) == without_timing(again)
    assert not first.training
    assert history[-1]["loss"] < history[0]["loss"]


def test_batches_are_full_and_each_row_is_seen_at_most_once_an_epoch() -> None:
    history, step = train(linear())
    # 10 rows in batches of 4: two full batches an epoch, the ragged two rows left out.
    assert [len(rows) for rows in step.batches] == [4] * 6
    for epoch in range(3):
        seen = [row for rows in step.batches[2 * epoch : 2 * epoch + 2] for row in rows]
        assert len(set(seen)) == 8 and set(seen) <= set(range(ROWS))
    assert step.batches[:2] != step.batches[2:4]  # reshuffled every epoch
    assert [row["batch_rows"] for row in history] == [4.0] * 3


def test_a_table_smaller_than_a_batch_is_used_whole() -> None:
    _, step = train(linear(), n_rows=3)
    assert [sorted(rows) for rows in step.batches] == [[0, 1, 2]] * 3


def test_epoch_metrics_are_batch_means_with_the_epoch_time() -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    history, _ = train(linear(), on_epoch=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert [metrics for _, metrics in seen] == history
    assert all(row["epoch_seconds"] >= 0.0 and set(row) >= {"loss"} for row in history)


def test_fewer_than_two_rows_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least two rows"):
        train(linear(), n_rows=1)


def checkpoints_of(settings: LoopSettings = SETTINGS) -> dict[int, dict[str, Tensor]]:
    kept: dict[int, dict[str, Tensor]] = {}

    def keep(epoch: int, tensors: dict[str, Tensor]) -> None:
        # Through safetensors bytes, as the stages store them.
        kept[epoch] = safetensors.torch.load(safetensors.torch.save(tensors))

    train(linear(), settings, on_checkpoint=keep)
    return kept


def test_resuming_from_any_epoch_reaches_the_weights_of_one_run() -> None:
    straight = linear()
    history, _ = train(straight)
    checkpoints = checkpoints_of()
    assert sorted(checkpoints) == [0, 1, 2]
    for epoch in (0, 1):
        resumed = linear()
        resumed_history, step = train(resumed, start_state=checkpoints[epoch])
        assert same_weights(straight, resumed)
        assert len(step.batches) == 2 * (2 - epoch)  # only the epochs left were trained
        assert without_timing(resumed_history) == without_timing(history)


def test_resuming_a_finished_run_trains_nothing_and_returns_its_history() -> None:
    straight = linear()
    history, _ = train(straight)
    resumed = linear().train()
    resumed_history, step = train(resumed, start_state=checkpoints_of()[2])
    assert step.batches == []
    assert same_weights(straight, resumed) and not resumed.training
    assert without_timing(resumed_history) == without_timing(history)


def test_a_checkpoint_of_another_model_is_refused() -> None:
    state = checkpoints_of()[0]
    wider = seeded_module(lambda: nn.Linear(3, 2), seed=0)
    with pytest.raises(CheckpointError, match="does not fit"):
        run_training(
            wider,
            list(wider.parameters()),
            Regression(wider),
            n_rows=ROWS,
            settings=SETTINGS,
            device=CPU,
            start_state=state,
        )


def test_a_checkpoint_missing_a_part_is_refused() -> None:
    state = checkpoints_of()[0]
    del state["rng/noise"]
    with pytest.raises(CheckpointError, match="incomplete"):
        train(linear(), start_state=state)


def test_the_training_state_round_trips_through_tensors() -> None:
    tensors = checkpoints_of()[1]
    state = TrainingState.from_tensors(tensors)
    assert state.epoch == 2 and len(state.history) == 2
    assert set(state.model) == {"weight", "bias"}
    again = state.to_tensors()
    assert again.keys() == tensors.keys()
    assert all(torch.equal(again[name], tensors[name]) for name in again)


def test_stored_tensors_are_copies_on_the_cpu() -> None:
    weight = torch.ones(2, 2)
    state = TrainingState(
        epoch=1,
        model={"weight": weight.t()},  # a non-contiguous view
        optimizer={},
        shuffle_rng=torch.Generator().get_state(),
        noise_rng=torch.Generator().get_state(),
    )
    tensors = state.to_tensors()
    weight.add_(1.0)
    assert torch.equal(tensors["model/weight"], torch.ones(2, 2))
    assert tensors["model/weight"].is_contiguous()
    assert not any(name.startswith("history/") for name in tensors)
    assert TrainingState.from_tensors(tensors).history == []


def test_a_schedule_in_steps_gives_small_tables_as_many_steps_as_large_ones() -> None:
    from fairdistill.models.training import loop_settings

    def schedule(rows: int, **given: int | None):
        options = {"epochs": None, "steps": 3000, "batch_size": None, **given}
        return loop_settings(rows, batch_bounds=(64, 256), learning_rate=1e-3, seed=0, **options)

    adult, german = schedule(39_073), schedule(800)
    assert (adult.batch_size, adult.epochs) == (256, 20)  # Adult's former 20 epochs
    assert german.batch_size == 64
    assert german.epochs * (800 // german.batch_size) >= 3000
    assert schedule(800, epochs=5).epochs == 5  # explicit settings win
    assert schedule(800, batch_size=32).batch_size == 32
    assert schedule(10).epochs == 3000  # one step a pass on a tiny table
