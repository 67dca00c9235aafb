"""From latents to encoded rows: shapes, valid one-hots, known frequencies, seeds, mixes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from fairdistill.models.blocks import EncodedTable, FeatureBlock
from fairdistill.models.errors import ConfigError
from fairdistill.models.generation import decode_latents, sample_sensitive, transform_rows
from fairdistill.models.teacher import FairVAE, TeacherConfig
from fairdistill.models.training import joint_group_index

LEVELS = [2, 3]
BLOCKS = [
    FeatureBlock("age", "continuous", 0, 1),
    FeatureBlock("job", "categorical", 1, 4),
    FeatureBlock("hours", "continuous", 5, 1),
    FeatureBlock("city", "categorical", 6, 3),
]
CONFIG = TeacherConfig(hidden=(16,), latent_dim=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(criterion: str = "demographic_parity") -> FairVAE:
    torch.manual_seed(0)
    return FairVAE.build(BLOCKS, LEVELS, CONFIG.model_copy(update={"criterion": criterion}))


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latents = rng.normal(size=(n, CONFIG.latent_dim)).astype(np.float32)
    sensitive = np.stack([rng.integers(0, 2, n), rng.integers(0, 3, n)], axis=1)
    return latents, sensitive


def _decode(model: FairVAE, n: int = 500, *, seed: int = 0, **options) -> tuple:
    latents, sensitive = _inputs(n)
    return decode_latents(
        model.decoder,
        model.label_head,
        latents,
        sensitive,
        LEVELS,
        seed=seed,
        criterion=model.criterion,
        **options,
    )


def _fix_output(model: FairVAE, bias: torch.Tensor, label_bias: float) -> None:
    """Make the decoder and label head ignore their inputs and emit fixed parameters."""
    with torch.no_grad():
        last = model.decoder.net[-1]
        last.weight.zero_()
        last.bias.copy_(bias)
        head = model.label_head.net[-1]
        head.weight.zero_()
        head.bias.fill_(label_bias)


def test_decoded_rows_have_the_right_shapes_and_valid_one_hots() -> None:
    features, label = _decode(_model(), batch_size=64)
    assert features.shape == (500, 9) and features.dtype == np.float32
    assert label.shape == (500,) and label.dtype == np.int64
    assert set(np.unique(label)) <= {0, 1}
    for block in BLOCKS:
        values = features[:, block.start : block.stop]
        if block.kind == "categorical":
            assert set(np.unique(values)) <= {0.0, 1.0}
            np.testing.assert_array_equal(values.sum(axis=1), 1.0)
        else:
            assert np.isfinite(values).all()


def test_decoding_is_deterministic_for_a_seed() -> None:
    model = _model()
    first, first_label = _decode(model, seed=11)
    second, second_label = _decode(model, seed=11)
    other, _ = _decode(model, seed=12)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_label, second_label)
    assert not np.array_equal(first, other)


def test_categories_and_labels_follow_the_decoded_probabilities() -> None:
    model = _model()
    # Output columns: 9 parameters, then one log-variance per continuous block (2).
    bias = torch.zeros(11)
    bias[1:5] = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    bias[0], bias[5] = 1.5, -2.0  # continuous means
    bias[9], bias[10] = np.log(0.25), np.log(4.0)  # log-variances (above the floor)
    _fix_output(model, bias, label_bias=float(np.log(0.3 / 0.7)))
    features, label = _decode(model, n=20_000, seed=3)
    np.testing.assert_allclose(features[:, 1:5].mean(axis=0), [0.1, 0.2, 0.3, 0.4], atol=0.015)
    assert label.mean() == pytest.approx(0.3, abs=0.015)
    assert features[:, 0].mean() == pytest.approx(1.5, abs=0.02)
    assert features[:, 0].std() == pytest.approx(0.5, rel=0.05)
    assert features[:, 5].std() == pytest.approx(2.0, rel=0.05)
    means, _ = _decode(model, n=200, seed=3, noise=False)
    np.testing.assert_allclose(means[:, 0], 1.5, rtol=1e-6)
    np.testing.assert_allclose(means[:, 5], -2.0, rtol=1e-6)
    np.testing.assert_array_equal(means[:, 1:5].sum(axis=1), 1.0)  # levels still drawn


def test_continuous_spread_is_capped_far_from_the_training_latents() -> None:
    model = _model()
    bias = torch.zeros(11)
    bias[9] = 50.0  # a runaway log-variance, as latents far out of distribution produce
    _fix_output(model, bias, label_bias=0.0)
    features, _ = _decode(model, n=20_000)
    assert features[:, 0].std() == pytest.approx(np.e, rel=0.05)


def test_equalized_odds_label_head_reads_the_sensitive_attributes() -> None:
    features, label = _decode(_model("equalized_odds"))
    assert features.shape == (500, 9)
    assert label.shape == (500,)


def test_empty_input_gives_empty_output() -> None:
    model = _model()
    features, label = decode_latents(
        model.decoder,
        model.label_head,
        np.zeros((0, 3), np.float32),
        np.zeros((0, 2), np.int64),
        LEVELS,
        seed=0,
        criterion=model.criterion,
    )
    assert features.shape == (0, 9) and label.shape == (0,)


def test_decoding_writes_rows_into_one_output_array() -> None:
    model = _model()
    latents, sensitive = _inputs(20_000)
    tracemalloc.start()
    try:
        features, label = decode_latents(
            model.decoder,
            model.label_head,
            latents,
            sensitive,
            LEVELS,
            seed=0,
            criterion=model.criterion,
            batch_size=1_000,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    output = features.nbytes + label.nbytes
    # The output plus the sensitive one-hot (~0.45 of it here) and one batch; collecting,
    # concatenating and converting the batches held three copies of the rows (~3.1x).
    assert output < peak < 2 * output


def test_transform_gives_one_row_per_real_row_with_its_own_groups() -> None:
    model = _model()
    rng = np.random.default_rng(0)
    _, sensitive = _inputs(300)
    real = EncodedTable(
        rng.normal(size=(300, 9)).astype(np.float32), sensitive, rng.integers(0, 2, 300)
    )
    first = transform_rows(
        model.encoder,
        model.decoder,
        model.label_head,
        real,
        LEVELS,
        seed=1,
        criterion=model.criterion,
    )
    again = transform_rows(
        model.encoder,
        model.decoder,
        model.label_head,
        real,
        LEVELS,
        seed=1,
        criterion=model.criterion,
    )
    assert first.features.shape == real.features.shape
    np.testing.assert_array_equal(first.sensitive, real.sensitive)
    np.testing.assert_array_equal(first.features, again.features)
    np.testing.assert_array_equal(first.label, again.label)


REAL_GROUPS = np.array([[0, 0]] * 60 + [[0, 1]] * 25 + [[1, 2]] * 10 + [[1, 0]] * 5)


def test_real_mix_draws_the_real_joint_distribution() -> None:
    drawn = sample_sensitive(20_000, REAL_GROUPS, seed=0)
    assert drawn.shape == (20_000, 2) and drawn.dtype == np.int64
    codes = joint_group_index(drawn, LEVELS)
    shares = {code: (codes == code).mean() for code in np.unique(codes)}
    expected = {0: 0.60, 1: 0.25, 5: 0.10, 3: 0.05}
    assert shares.keys() == expected.keys()
    for code, share in expected.items():
        assert shares[code] == pytest.approx(share, abs=0.015)
    np.testing.assert_array_equal(drawn, sample_sensitive(20_000, REAL_GROUPS, seed=0))


@pytest.mark.parametrize("n", [400, 403])
def test_balanced_mix_gives_equal_counts_per_seen_group(n: int) -> None:
    drawn = sample_sensitive(n, REAL_GROUPS, seed=0, mix="balanced")
    _, counts = np.unique(drawn, axis=0, return_counts=True)
    assert len(counts) == 4
    assert counts.sum() == n
    assert counts.max() - counts.min() == (0 if n % 4 == 0 else 1)


def test_explicit_mix_gives_exact_counts_including_unseen_groups() -> None:
    drawn = sample_sensitive(1000, REAL_GROUPS, seed=0, mix={(0, 0): 0.5, (1, 1): 0.3, (1, 2): 0.2})
    groups, counts = np.unique(drawn, axis=0, return_counts=True)
    assert dict(zip(map(tuple, groups.tolist()), counts.tolist(), strict=True)) == {
        (0, 0): 500,
        (1, 1): 300,
        (1, 2): 200,
    }
    single = sample_sensitive(7, np.array([[0], [1]]), seed=0, mix={0: 1, 1: 2})
    assert sorted(single[:, 0].tolist()) == [0, 0, 1, 1, 1, 1, 1]
    # Rows come shuffled, not sorted by group.
    assert not np.array_equal(drawn, np.sort(drawn, axis=0))


@pytest.mark.parametrize(
    "mix",
    [
        "equal",
        {(0,): 1.0},
        {(0, 5): 1.0},
        {(0, 0): -1.0, (1, 2): 2.0},
        {(0, 0): 0.0},
        {},
    ],
)
def test_invalid_mixes_are_refused(mix) -> None:
    with pytest.raises(ConfigError):
        sample_sensitive(10, REAL_GROUPS, seed=0, mix=mix)
