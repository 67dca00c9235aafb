"""The fair VAE teacher: it forgets s, trains deterministically, resumes exactly, rebuilds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch
import torch

from fairdistill.models.architectures import build_from_architecture, module_from_state
from fairdistill.models.blocks import EncodedTable, FeatureBlock
from fairdistill.models.errors import CheckpointError, ConfigError
from fairdistill.models.losses import distance_correlation
from fairdistill.models.networks import LabelHead, LatentDecoder, LatentEncoder, parameter_count
from fairdistill.models.teacher import (
    FairVAE,
    TeacherConfig,
    calibrate_label_rate,
    encode_latents,
    logit_shift_for_rate,
    probe_sensitive_auroc,
    train_teacher,
)
from fairdistill.models.training import TrainingState, resolve_device

LEVELS = [2]
FAST = TeacherConfig(hidden=(32, 32), latent_dim=4, epochs=4, batch_size=128)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def leaky_table(n: int = 1200, seed: int = 0) -> tuple[EncodedTable, list[FeatureBlock]]:
    """Features that reveal the sensitive bit s and a latent factor u; the label needs both."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    u = rng.normal(size=n)
    continuous = np.stack(
        [u + 1.5 * s, -u + s, u + 0.3 * rng.normal(size=n), 2.0 * s + 0.5 * rng.normal(size=n)],
        axis=1,
    )
    continuous = (continuous - continuous.mean(axis=0)) / continuous.std(axis=0)
    colour_logits = np.stack([2.0 * s, u, np.zeros(n)], axis=1)
    colour_probs = np.exp(colour_logits) / np.exp(colour_logits).sum(axis=1, keepdims=True)
    colour = (colour_probs.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=2)
    size = (u + rng.normal(size=n) > 0).astype(int)
    features = np.concatenate([continuous, np.eye(3)[colour], np.eye(2)[size]], axis=1)
    label = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * u + 2.0 * (s - 0.5))))).astype(np.int64)
    blocks = [FeatureBlock(f"number_{i}", "continuous", i, 1) for i in range(4)] + [
        FeatureBlock("colour", "categorical", 4, 3),
        FeatureBlock("size", "categorical", 7, 2),
    ]
    return EncodedTable(features.astype(np.float32), s[:, None].astype(np.int64), label), blocks


@pytest.fixture(scope="module")
def table() -> tuple[EncodedTable, list[FeatureBlock]]:
    return leaky_table()


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def _same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_fairness_term_removes_the_sensitive_attribute_from_the_latent(table) -> None:
    data, blocks = table
    leakage = {}
    for beta in (0.0, 5.0):
        config = FAST.model_copy(update={"beta": beta, "epochs": 15})
        model, _ = train_teacher(data, blocks, LEVELS, config, seed=0)
        latents = encode_latents(model, data, LEVELS)
        auroc = probe_sensitive_auroc(latents, data.sensitive, seed=0)["attribute_0"]
        dcor = distance_correlation(
            torch.as_tensor(latents), torch.eye(2)[data.sensitive[:, 0]]
        ).item()
        leakage[beta] = (auroc, dcor)
    assert leakage[0.0][0] > 0.7  # without the penalty the latent gives s away
    assert leakage[5.0][0] < 0.6
    assert leakage[5.0][0] < leakage[0.0][0] - 0.15
    assert leakage[5.0][1] < 0.5 * leakage[0.0][1]


def test_history_reports_every_term_for_every_epoch(table) -> None:
    data, blocks = table
    seen: list[int] = []
    _, history = train_teacher(
        data, blocks, LEVELS, FAST, seed=0, on_epoch=lambda epoch, _: seen.append(epoch)
    )
    assert seen == [0, 1, 2, 3]
    expected = {"loss", "reconstruction", "kl", "label", "fairness", "dcor", "parity_gap"}
    assert len(history) == 4
    for metrics in history:
        assert expected <= metrics.keys()
        assert all(np.isfinite(value) for value in metrics.values())
    assert history[-1]["loss"] < history[0]["loss"]


def test_training_is_deterministic_for_a_seed(table) -> None:
    data, blocks = table
    first, first_history = train_teacher(data, blocks, LEVELS, FAST, seed=3)
    second, second_history = train_teacher(data, blocks, LEVELS, FAST, seed=3)
    other, _ = train_teacher(data, blocks, LEVELS, FAST, seed=4)
    assert _same_weights(_weights(first), _weights(second))
    assert first_history[-1]["loss"] == second_history[-1]["loss"]
    assert not _same_weights(_weights(first), _weights(other))


def test_training_leaves_the_global_random_state_alone(table) -> None:
    data, blocks = table
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_teacher(data, blocks, LEVELS, FAST.model_copy(update={"epochs": 1}), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_resumed_training_reaches_the_same_weights(table) -> None:
    data, blocks = table
    straight, straight_history = train_teacher(data, blocks, LEVELS, FAST, seed=1)
    checkpoints: dict[int, bytes] = {}

    def keep(epoch: int, tensors: dict[str, torch.Tensor]) -> None:
        # Through safetensors bytes, as a caller would store the state.
        checkpoints[epoch] = safetensors.torch.save(tensors)

    train_teacher(data, blocks, LEVELS, FAST, seed=1, on_checkpoint=keep)
    after_two_epochs = safetensors.torch.load(checkpoints[1])
    resumed, resumed_history = train_teacher(
        data, blocks, LEVELS, FAST, seed=1, start_state=after_two_epochs
    )
    assert _same_weights(_weights(straight), _weights(resumed))
    assert len(resumed_history) == 4
    for before, after in zip(straight_history, resumed_history, strict=True):
        assert before["loss"] == pytest.approx(after["loss"], rel=1e-12)


def test_training_state_round_trips_through_tensors(table) -> None:
    data, blocks = table
    states: list[dict[str, torch.Tensor]] = []
    train_teacher(
        data,
        blocks,
        LEVELS,
        FAST.model_copy(update={"epochs": 2}),
        seed=0,
        on_checkpoint=lambda _, tensors: states.append(tensors),
    )
    state = TrainingState.from_tensors(states[-1])
    assert state.epoch == 2
    assert len(state.history) == 2
    assert all(isinstance(value, torch.Tensor) for value in states[-1].values())
    again = state.to_tensors()
    assert again.keys() == states[-1].keys()
    assert all(torch.equal(again[k], states[-1][k]) for k in again)
    with pytest.raises(CheckpointError):
        TrainingState.from_tensors({"epoch": torch.tensor(1)})
    wider = FAST.model_copy(update={"hidden": (48, 32)})
    with pytest.raises(CheckpointError, match="does not fit"):
        train_teacher(data, blocks, LEVELS, wider, seed=0, start_state=states[-1])


def test_equalized_odds_teacher_gives_the_label_head_the_sensitive_attribute(table) -> None:
    data, blocks = table
    config = FAST.model_copy(update={"criterion": "equalized_odds", "epochs": 2})
    model, history = train_teacher(data, blocks, LEVELS, config, seed=0)
    assert model.label_head.in_dim == config.latent_dim + sum(LEVELS)
    assert np.isfinite(history[-1]["dcor"])
    assert history[-1]["parity_gap"] == 0.0


def test_teacher_parts_implement_the_modality_agnostic_interface(table) -> None:
    _, blocks = table
    model = FairVAE.build(blocks, LEVELS, FAST)
    assert isinstance(model.encoder, LatentEncoder)
    assert isinstance(model.decoder, LatentDecoder)
    assert isinstance(model.label_head, LabelHead)


def test_teacher_rebuilds_from_its_architecture_and_weights(table) -> None:
    data, blocks = table
    model, _ = train_teacher(data, blocks, LEVELS, FAST.model_copy(update={"epochs": 1}), seed=0)
    architecture = json.loads(json.dumps(model.architecture()))
    weights = safetensors.torch.load(safetensors.torch.save(model.state_dict()))
    rebuilt = module_from_state(architecture, weights)
    assert isinstance(rebuilt, FairVAE)
    assert rebuilt.criterion == model.criterion
    np.testing.assert_array_equal(
        encode_latents(rebuilt, data, LEVELS), encode_latents(model, data, LEVELS)
    )
    encoder = build_from_architecture(model.encoder.architecture())
    assert parameter_count(encoder) == parameter_count(model.encoder)


def test_rebuilding_refuses_unknown_kinds_and_mismatched_weights(table) -> None:
    _, blocks = table
    model = FairVAE.build(blocks, LEVELS, FAST)
    with pytest.raises(CheckpointError, match="Unknown model architecture"):
        build_from_architecture({"kind": "Transformer"})
    other = FairVAE.build(blocks, LEVELS, FAST.model_copy(update={"latent_dim": 5}))
    with pytest.raises(CheckpointError, match="do not match"):
        module_from_state(model.architecture(), other.state_dict())


def test_encode_latents_is_batched_without_changing_the_result(table) -> None:
    data, blocks = table
    model = FairVAE.build(blocks, LEVELS, FAST)
    whole = encode_latents(model, data, LEVELS)
    batched = encode_latents(model.encoder, data, LEVELS, batch_size=100)
    assert whole.shape == (len(data), FAST.latent_dim)
    assert whole.dtype == np.float32
    np.testing.assert_allclose(whole, batched, rtol=1e-5, atol=1e-6)


def test_probe_finds_leakage_and_reports_every_attribute() -> None:
    rng = np.random.default_rng(0)
    sensitive = np.stack([rng.integers(0, 2, 1000), rng.integers(0, 3, 1000)], axis=1)
    leaky = np.concatenate(
        [sensitive + rng.normal(0, 0.5, (1000, 2)), rng.normal(size=(1000, 2))], 1
    )
    clean = rng.normal(size=(1000, 4))
    leaked = probe_sensitive_auroc(leaky, sensitive, seed=0, names=["sex", "race"])
    assert set(leaked) == {"sex", "race", "intersection"}
    assert leaked["sex"] > 0.85 and leaked["race"] > 0.8 and leaked["intersection"] > 0.8
    unaware = probe_sensitive_auroc(clean, sensitive, seed=0)
    assert all(abs(value - 0.5) < 0.08 for value in unaware.values())
    single = probe_sensitive_auroc(clean, np.zeros((1000, 1), dtype=np.int64), seed=0)
    assert np.isnan(single["attribute_0"])


def test_config_refuses_unknown_and_invalid_values() -> None:
    with pytest.raises(ValueError):
        TeacherConfig(epoch=3)
    with pytest.raises(ValueError):
        TeacherConfig(beta=-1.0)
    with pytest.raises(ValueError):
        TeacherConfig(criterion="calibration")
    assert TeacherConfig.model_validate({"hidden": [64, 32]}).hidden == (64, 32)


def test_training_refuses_sensitive_levels_that_do_not_fit(table) -> None:
    data, blocks = table
    with pytest.raises(ConfigError):
        train_teacher(data, blocks, [2, 3], FAST, seed=0)
    with pytest.raises(ConfigError):
        train_teacher(data, blocks, [1], FAST, seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on CPU-only machines")
def test_cuda_request_without_cuda_is_refused() -> None:
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("cuda")


def test_logit_shift_for_rate_solves_for_the_requested_mean_probability() -> None:
    # sigmoid(c) = 0.75 exactly when c = log(3).
    assert logit_shift_for_rate(torch.zeros(10), 0.75) == pytest.approx(np.log(3.0), abs=1e-6)
    logits = torch.linspace(-4.0, 2.0, 101)
    shift = logit_shift_for_rate(logits, 0.3)
    assert float(torch.sigmoid(logits + shift).mean()) == pytest.approx(0.3, abs=1e-6)
    # An unreachable rate ends at the bound nearest to it instead of running off.
    assert 15.0 < logit_shift_for_rate(logits, 1.0) <= 20.0
    assert -20.0 <= logit_shift_for_rate(logits, 0.0) < -15.0


def _mean_label_probability(model: FairVAE, data: EncodedTable) -> float:
    codes = torch.as_tensor(encode_latents(model, data, LEVELS))
    with torch.no_grad():
        return float(torch.sigmoid(model.label_head(codes)).mean())


def test_calibrated_teacher_predicts_the_real_positive_rate(table) -> None:
    data, blocks = table
    # A strong fairness weight drags the head's rate away from the real one.
    config = FAST.model_copy(update={"beta": 20.0})
    calibrated, _ = train_teacher(data, blocks, LEVELS, config, seed=0)
    raw, _ = train_teacher(
        data, blocks, LEVELS, config.model_copy(update={"calibrate_label_rate": False}), seed=0
    )
    rate = float(data.label.mean())
    assert _mean_label_probability(calibrated, data) == pytest.approx(rate, abs=1e-4)
    raw_weights, calibrated_weights = _weights(raw), _weights(calibrated)
    changed = [
        name for name in raw_weights if not torch.equal(raw_weights[name], calibrated_weights[name])
    ]
    assert changed == ["label_head.net.2.bias"]
    # However far off the head is, calibration brings its rate back.
    raw.label_head.shift_logit(2.0)
    assert abs(_mean_label_probability(raw, data) - rate) > 0.05
    calibrate_label_rate(raw, data, LEVELS, seed=0)
    assert _mean_label_probability(raw, data) == pytest.approx(rate, abs=1e-4)


def test_calibration_subsamples_large_tables_deterministically(table, monkeypatch) -> None:
    data, blocks = table
    model, _ = train_teacher(
        data, blocks, LEVELS, FAST.model_copy(update={"calibrate_label_rate": False}), seed=0
    )
    monkeypatch.setattr("fairdistill.models.teacher.CALIBRATION_MAX_ROWS", 500)
    first = calibrate_label_rate(model, data, LEVELS, seed=1)
    model.label_head.shift_logit(-first)
    assert calibrate_label_rate(model, data, LEVELS, seed=1) == pytest.approx(first, abs=1e-6)
    assert abs(_mean_label_probability(model, data) - float(data.label.mean())) < 0.05
