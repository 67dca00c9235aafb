"""What the teacher and the student share: device choice, tensors of a table, the epoch loop.

The loop is deterministic for a seed on CPU: the initial weights come from a seeded fork of
torch's global generator, shuffling and latent noise from their own generators, and the
resumable :class:`TrainingState` carries all three along with the optimizer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from fairdistill.models.blocks import EncodedTable, one_hot_sensitive
from fairdistill.models.errors import CheckpointError, ConfigError

EpochCallback = Callable[[int, dict[str, float]], None]
CheckpointCallback = Callable[[int, dict[str, Tensor]], None]
# One training step: rows of the batch and the noise generator in, named scalars out;
# the "loss" entry is the one that is minimised.
StepFunction = Callable[[Tensor, torch.Generator], dict[str, Tensor]]

Module = TypeVar("Module", bound=nn.Module)

# Keeps the second generator's stream apart from the shuffling one for the same seed.
_NOISE_SEED_OFFSET = 7919


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request without CUDA is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but no CUDA device is available",
            rule="device",
            hint="use device 'auto' or 'cpu'",
        )
    return resolved


def seeded_module(build: Callable[[], Module], seed: int) -> Module:
    """Build a module whose initial weights depend on ``seed`` alone.

    The global generator is forked so that the caller's random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def joint_group_index(sensitive: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    """One integer per row naming its intersectional group (mixed-radix code of the levels)."""
    index = np.zeros(sensitive.shape[0], dtype=np.int64)
    for column, count in enumerate(levels):
        index = index * count + sensitive[:, column].astype(np.int64)
    return index


def joint_one_hot(sensitive: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    """One-hot of the intersectional group over the groups present (float32).

    Every intersection is its own category at equal distance from the others, so a
    dependence penalty on it covers the attributes jointly, interactions included.
    """
    groups, compact = np.unique(joint_group_index(sensitive, levels), return_inverse=True)
    return np.eye(max(len(groups), 1), dtype=np.float32)[compact]


@dataclass(frozen=True)
class TableTensors:
    """A table moved to the training device, in the forms the models consume."""

    features: Tensor  # (n, d)
    label: Tensor  # (n,) float 0/1
    sensitive: Tensor  # (n, sum(levels)) one-hot per attribute, side by side
    sensitive_joint: Tensor  # (n, groups) one-hot of the intersectional group
    condition: Tensor  # (n, 2 + sum(levels)): label one-hot and sensitive one-hot

    def __len__(self) -> int:
        return int(self.label.shape[0])


def encoder_condition(label: np.ndarray, sensitive_one_hot: np.ndarray) -> np.ndarray:
    """What the encoder is conditioned on besides x: the label one-hot and s one-hot."""
    label_one_hot = np.eye(2, dtype=np.float32)[label.astype(np.int64)]
    return np.concatenate([label_one_hot, sensitive_one_hot.astype(np.float32)], axis=1)


def table_tensors(
    table: EncodedTable, sensitive_levels: Sequence[int], device: torch.device
) -> TableTensors:
    check_sensitive_levels(table, sensitive_levels)
    sensitive = one_hot_sensitive(table.sensitive, list(sensitive_levels))

    def put(array: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32), device=device)

    return TableTensors(
        features=put(table.features),
        label=put(table.label),
        sensitive=put(sensitive),
        sensitive_joint=put(joint_one_hot(table.sensitive, sensitive_levels)),
        condition=put(encoder_condition(table.label, sensitive)),
    )


def check_sensitive_levels(table: EncodedTable, sensitive_levels: Sequence[int]) -> None:
    """Refuse a table whose sensitive codes do not fit the declared level counts."""
    if table.sensitive.ndim != 2 or table.sensitive.shape[1] != len(sensitive_levels):
        raise ConfigError(
            f"the table has {table.sensitive.shape[1:]} sensitive columns "
            f"but {len(sensitive_levels)} level counts were given",
            rule="sensitive_levels",
        )
    if len(table) and (
        table.sensitive.min() < 0 or (table.sensitive >= np.asarray(sensitive_levels)).any()
    ):
        raise ConfigError(
            "a sensitive level index is outside the declared levels",
            rule="sensitive_levels",
        )


@dataclass
class TrainingState:
    """Everything needed to continue training after ``epoch`` epochs, as plain tensors."""

    epoch: int
    model: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    shuffle_rng: Tensor
    noise_rng: Tensor
    history: list[dict[str, float]] = field(default_factory=list)

    def to_tensors(self) -> dict[str, Tensor]:
        """A flat name → tensor dict (CPU, contiguous) that safetensors can store."""
        tensors = {"epoch": torch.tensor(self.epoch, dtype=torch.int64)}
        tensors |= {f"model/{k}": v for k, v in self.model.items()}
        tensors |= {f"optimizer/{k}": v for k, v in self.optimizer.items()}
        tensors["rng/shuffle"] = self.shuffle_rng
        tensors["rng/noise"] = self.noise_rng
        for name in self.history[0] if self.history else ():
            values = [row[name] for row in self.history]
            tensors[f"history/{name}"] = torch.tensor(values, dtype=torch.float64)
        return {k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> TrainingState:
        def part(prefix: str) -> dict[str, Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            epoch = int(tensors["epoch"])
            series = part("history/")
            history = [
                {name: float(values[row]) for name, values in series.items()}
                for row in range(epoch if series else 0)
            ]
            return cls(
                epoch=epoch,
                model=part("model/"),
                optimizer=part("optimizer/"),
                shuffle_rng=tensors["rng/shuffle"],
                noise_rng=tensors["rng/noise"],
                history=history,
            )
        except (KeyError, IndexError) as error:
            raise CheckpointError(
                f"The training checkpoint is incomplete (missing {error})",
                rule="checkpoint",
                hint="delete the checkpoint to train from the start",
            ) from error


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """The per-parameter optimizer state; hyperparameters are rebuilt from the config."""
    state = optimizer.state_dict()["state"]
    return {
        f"{index}/{name}": torch.as_tensor(value)
        for index, entries in state.items()
        for name, value in entries.items()
    }


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor]) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value.clone()
    groups = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _batches(n_rows: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Shuffled row indices in full batches (a ragged last batch would give a noisy penalty).

    A table smaller than one batch is used whole.
    """
    order = torch.randperm(n_rows, generator=generator)
    if n_rows <= batch_size:
        yield order
        return
    for start in range(0, n_rows - batch_size + 1, batch_size):
        yield order[start : start + batch_size]


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    # Cosine decay of the learning rate from ``learning_rate`` to 0 over the whole run.
    cosine_decay: bool = False

    def steps_per_epoch(self, n_rows: int) -> int:
        return max(1, n_rows // self.batch_size) if n_rows > self.batch_size else 1

    def rate_at(self, step: int, n_rows: int) -> float:
        """The learning rate of optimiser step ``step`` (counted from 0 over all epochs)."""
        if not self.cosine_decay:
            return self.learning_rate
        total = self.epochs * self.steps_per_epoch(n_rows)
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def scaled_batch_size(rows: int, smallest: int, largest: int) -> int:
    """A power of two near ``rows / ROWS_PER_STEP_DIVISOR`` within [smallest, largest].

    Small tables get small batches (more steps a pass), large ones the largest batch: on
    German credit (800 rows) batch 256 left 3 steps a pass and a label near chance.
    """
    target = max(rows, 1) / ROWS_PER_STEP_DIVISOR
    return int(min(largest, max(smallest, 2 ** round(math.log2(max(target, 1.0))))))


# rows / 12: about a dozen steps a pass on a small table before the batch floor binds.
ROWS_PER_STEP_DIVISOR = 12


def loop_settings(
    rows: int,
    *,
    epochs: int | None,
    steps: int,
    batch_size: int | None,
    batch_bounds: tuple[int, int],
    learning_rate: float,
    seed: int,
    cosine_decay: bool = False,
) -> LoopSettings:
    """The loop of a training stage: explicit ``epochs``/``batch_size`` win; otherwise the
    batch scales with the rows and the epochs give about ``steps`` optimiser steps (at least
    one pass), so a small table gets as many steps as a large one."""
    batch = batch_size or scaled_batch_size(rows, *batch_bounds)
    if epochs is None:
        per_pass = max(1, rows // batch) if rows > batch else 1
        epochs = max(1, math.ceil(steps / per_pass))
    return LoopSettings(epochs, batch, learning_rate, seed, cosine_decay)


class ScheduleOptions(Protocol):
    """The loop options a stage's config holds (the teacher's and the student's)."""

    @property
    def epochs(self) -> int | None: ...
    @property
    def steps(self) -> int: ...
    @property
    def batch_size(self) -> int | None: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def cosine_decay(self) -> bool: ...


def schedule_from(
    config: ScheduleOptions, rows: int, batch_bounds: tuple[int, int], seed: int
) -> LoopSettings:
    """:func:`loop_settings` with the options of a stage's ``config``."""
    return loop_settings(
        rows,
        epochs=config.epochs,
        steps=config.steps,
        batch_size=config.batch_size,
        batch_bounds=batch_bounds,
        learning_rate=config.learning_rate,
        seed=seed,
        cosine_decay=config.cosine_decay,
    )


def run_training(
    model: nn.Module,
    parameters: Sequence[nn.Parameter],
    step: StepFunction,
    *,
    n_rows: int,
    settings: LoopSettings,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    start_state: dict[str, Tensor] | None = None,
) -> list[dict[str, float]]:
    """Minimise ``step``'s loss with Adam over shuffled batches; return per-epoch means.

    ``on_checkpoint`` receives, after every epoch, the state from which
    ``start_state`` resumes to exactly the weights of an uninterrupted run.
    """
    if n_rows < 2:
        raise ConfigError("training needs at least two rows", rule="rows")
    optimizer = torch.optim.Adam(parameters, lr=settings.learning_rate)
    shuffle_rng = torch.Generator().manual_seed(settings.seed)
    noise_rng = torch.Generator(device=device).manual_seed(settings.seed + _NOISE_SEED_OFFSET)
    history: list[dict[str, float]] = []
    if start_state is not None:
        history = _restore(start_state, model, optimizer, shuffle_rng, noise_rng)
    for epoch in range(len(history), settings.epochs):
        started = time.perf_counter()
        metrics = _train_epoch(
            model, optimizer, step, n_rows, settings, shuffle_rng, noise_rng, epoch=epoch
        )
        metrics["epoch_seconds"] = time.perf_counter() - started
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if on_checkpoint is not None:
            state = TrainingState(
                epoch=epoch + 1,
                model=model.state_dict(),
                optimizer=_optimizer_tensors(optimizer),
                shuffle_rng=shuffle_rng.get_state(),
                noise_rng=noise_rng.get_state(),
                history=history,
            )
            on_checkpoint(epoch, state.to_tensors())
    model.eval()
    return history


def _restore(
    tensors: dict[str, Tensor],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    shuffle_rng: torch.Generator,
    noise_rng: torch.Generator,
) -> list[dict[str, float]]:
    """Load a checkpoint into the freshly built training objects; return its history."""
    state = TrainingState.from_tensors(tensors)
    try:
        model.load_state_dict(state.model)
        _load_optimizer(optimizer, state.optimizer)
        shuffle_rng.set_state(state.shuffle_rng)
        noise_rng.set_state(state.noise_rng)
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            "The training checkpoint does not fit this model or configuration",
            rule="checkpoint",
            hint="delete the checkpoint to train from the start",
        ) from error
    return state.history


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: StepFunction,
    n_rows: int,
    settings: LoopSettings,
    shuffle_rng: torch.Generator,
    noise_rng: torch.Generator,
    *,
    epoch: int,
) -> dict[str, float]:
    model.train()
    totals: dict[str, Tensor] = {}
    count = 0
    device = noise_rng.device
    first_step = epoch * settings.steps_per_epoch(n_rows)
    for rows in _batches(n_rows, settings.batch_size, shuffle_rng):
        if settings.cosine_decay:
            for group in optimizer.param_groups:
                group["lr"] = settings.rate_at(first_step + count, n_rows)
        values = step(rows.to(device), noise_rng)
        optimizer.zero_grad(set_to_none=True)
        values["loss"].backward()
        optimizer.step()
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + value.detach()
        count += 1
    # One synchronisation per epoch instead of one per batch on a GPU.
    return {name: float(total) / count for name, total in totals.items()}
