"""The generator's label model: a clean label from a row's features, with per-group
thresholds that make the labels fair by the chosen criterion on the real rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.labeling import (
    DRAWN_SHARE,
    FULL_DRAWN_SHARE_ROWS,
    FeatureLabelModel,
    LabelModelConfig,
    draw_offsets,
    drawn_label_share,
    equalized_odds_thresholds,
    fit_label_model,
    label_batch_size,
    parity_cuts,
    parity_thresholds,
    rate_cut,
    rate_threshold,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def biased_table(rows: int = 2000, seed: int = 0) -> EncodedTable:
    """Two features, a binary group that shifts the label: group 1 is positive far more."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, rows)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    logit = 2.0 * x[:, 0] + 1.5 * group - 1.0
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return EncodedTable(features=x, sensitive=group[:, None], label=label)


def decided_labels(model: FeatureLabelModel, table: EncodedTable, seed: int) -> np.ndarray:
    """The labels ``model`` gives the rows of ``table`` (one binary group) for a seed."""
    features = torch.as_tensor(table.features)
    sensitive = torch.nn.functional.one_hot(torch.as_tensor(table.sensitive[:, 0]), 2).float()
    groups = torch.as_tensor(table.sensitive[:, 0])
    generator = torch.Generator().manual_seed(seed)
    return model.decide(features, sensitive, groups, generator).numpy()


def test_a_rate_threshold_puts_exactly_that_share_at_or_above_it() -> None:
    logits = np.random.default_rng(1).normal(size=1001)
    for rate in (0.0, 0.1, 0.237, 0.5, 1.0):
        threshold = rate_threshold(logits, rate)
        assert (logits >= threshold).sum() == round(rate * len(logits))


def test_parity_thresholds_give_every_group_the_overall_rate() -> None:
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 3, 3000)
    logits = rng.normal(size=3000) + groups  # group 2 scores far higher
    thresholds = parity_thresholds(logits, 0.3, groups, count=4)
    for group in range(3):
        positive = logits[groups == group] >= thresholds[group]
        assert abs(positive.mean() - 0.3) < 0.002
    assert thresholds[3] == rate_threshold(logits, 0.3)  # a group without rows


def few_valued_table(rows: int = 3000, seed: int = 4) -> EncodedTable:
    """One categorical feature of four values and a group that shifts the label: every
    row of a group has one of four logits, so the rate is reached inside a tie."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, rows)
    purpose = rng.integers(0, 4, rows)
    chance = np.array([0.35, 0.45, 0.5, 0.7])[purpose] + np.where(group == 1, 0.1, -0.05)
    label = (rng.random(rows) < chance).astype(np.int64)
    features = np.eye(4, dtype=np.float32)[purpose]
    return EncodedTable(features=features, sensitive=group[:, None], label=label)


def test_a_cut_inside_a_tie_labels_a_share_of_the_tied_rows() -> None:
    logits = np.repeat([2.0, 1.0, 0.0, -1.0], 250)  # four levels of 250 rows
    threshold, share = rate_cut(logits, 0.6)  # 600 rows: two levels and 100 of the third
    assert threshold == 0.0 and share == pytest.approx(0.4)
    # A plain threshold can only take the whole tied level or none of it.
    assert (logits >= rate_threshold(logits, 0.6)).sum() == 750
    # Without a tie at the cut the share is 1 and the threshold the plain one.
    distinct = np.random.default_rng(5).normal(size=1000)
    assert rate_cut(distinct, 0.3) == (rate_threshold(distinct, 0.3), 1.0)
    groups = np.repeat([0, 1], 500)
    thresholds, shares = parity_cuts(logits, 0.6, groups, count=3)
    # Group 0 holds levels 2 and 1: 300 rows are all of level 2 and a fifth of level 1.
    assert thresholds[0] == 1.0 and shares[0] == pytest.approx(0.2)
    assert (thresholds[2], shares[2]) == rate_cut(logits, 0.6)  # a group without rows


def test_few_valued_features_are_labelled_at_the_real_rate_in_every_group() -> None:
    table = few_valued_table()
    torch.manual_seed(0)
    model = FeatureLabelModel(4, [2], [], [16], bins=0)
    # Thresholds alone: drawn labels would break the rule asserted below.
    config = LabelModelConfig(epochs=10, drawn_share=0.0)
    fit_label_model(model, table, config, "demographic_parity", seed=0, device=torch.device("cpu"))
    assert float(model.tie_shares.min()) < 1.0  # the cut fell inside a tie

    def labels(seed: int) -> np.ndarray:
        return decided_labels(model, table, seed)

    drawn, rate = labels(1), table.label.mean()
    for group in (0, 1):
        assert abs(drawn[table.sensitive[:, 0] == group].mean() - rate) < 0.03
    # Still a function of the feature where it is not tied: the best purpose always positive.
    assert drawn[table.features[:, 3] == 1].mean() == 1.0
    assert np.array_equal(drawn, labels(1)) and not np.array_equal(drawn, labels(2))


def test_equalized_odds_thresholds_match_true_and_false_positive_rates() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 2, 6000)
    label = (rng.random(6000) < np.where(groups == 1, 0.5, 0.2)).astype(np.int64)
    logits = 1.5 * label + rng.normal(size=6000) + 0.8 * groups  # group 1 scored higher
    thresholds = equalized_odds_thresholds(logits, label, groups, 2, min_ratio=0.9)
    rates = []
    for group in (0, 1):
        positive = logits[groups == group] >= thresholds[group]
        truth = label[groups == group]
        rates.append((positive[truth == 1].mean(), positive[truth == 0].mean()))
    (tpr0, fpr0), (tpr1, fpr1) = rates
    assert min(tpr0, tpr1) / max(tpr0, tpr1) >= 0.88
    assert min(fpr0, fpr1) / max(fpr0, fpr1) >= 0.88
    assert min(tpr0, tpr1) >= 0.5  # no trivial "nobody positive" answer
    # A single threshold for both groups would not equalise the rates.
    shared = logits >= rate_threshold(logits, label.mean())
    fpr_shared = [shared[(groups == g) & (label == 0)].mean() for g in (0, 1)]
    assert min(fpr_shared) / max(fpr_shared) < 0.8


def test_the_fitted_model_labels_fairly_and_follows_the_features() -> None:
    table = biased_table()
    torch.manual_seed(0)
    model = FeatureLabelModel(2, [2], [0, 1], [16], bins=8)
    config = LabelModelConfig(epochs=15, drawn_share=0.0)
    fit_label_model(model, table, config, "demographic_parity", seed=0, device=torch.device("cpu"))
    features = torch.as_tensor(table.features)
    sensitive = torch.nn.functional.one_hot(torch.as_tensor(table.sensitive[:, 0]), 2).float()
    groups = torch.as_tensor(table.sensitive[:, 0])
    labels = model.decide(features, sensitive, groups).numpy()
    rate = table.label.mean()
    for group in (0, 1):
        assert abs(labels[table.sensitive[:, 0] == group].mean() - rate) < 0.01
    # The fair label is still a clean function of the feature that drives the real one.
    high = table.features[:, 0] > 0.5
    assert labels[high].mean() > 0.6 > 0.1 > labels[table.features[:, 0] < -0.5].mean()


def test_fitting_repeats_for_a_seed() -> None:
    table = biased_table(600)

    def fitted() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = FeatureLabelModel(2, [2], [0, 1], [8], bins=4)
        fit_label_model(
            model, table, LabelModelConfig(epochs=3), "demographic_parity", seed=5,
            device=torch.device("cpu"),
        )  # fmt: skip
        return model.state_dict()

    first, again = fitted(), fitted()
    assert all(torch.equal(first[name], again[name]) for name in first)


def test_bins_follow_the_distinct_values_so_a_spike_takes_one_bin() -> None:
    values = np.concatenate([np.zeros(920), np.linspace(1.0, 5.0, 80)]).astype(np.float32)
    model = FeatureLabelModel(1, [2], [0], [4], bins=8)
    model.fit_bins(torch.as_tensor(values[:, None]))
    lower = model.bin_lower[0].numpy()
    assert (lower[lower < 1e3] > 0.0).sum() >= 6  # most bins cover the spread-out values


def test_small_tables_get_small_batches() -> None:
    assert label_batch_size(800) == 32
    assert label_batch_size(5000) == 256
    assert label_batch_size(40_000) == 256


def test_the_drawn_share_grows_with_the_rows_and_is_off_under_equalized_odds() -> None:
    assert drawn_label_share(FULL_DRAWN_SHARE_ROWS, "demographic_parity", None) == DRAWN_SHARE
    assert drawn_label_share(10 * FULL_DRAWN_SHARE_ROWS, "demographic_parity", None) == DRAWN_SHARE
    assert drawn_label_share(800, "demographic_parity", None) == pytest.approx(
        DRAWN_SHARE * 800 / FULL_DRAWN_SHARE_ROWS
    )
    assert drawn_label_share(50_000, "equalized_odds", None) == 0.0
    assert drawn_label_share(800, "equalized_odds", 0.2) == 0.2  # a configured share wins
    with pytest.raises(ValueError):
        LabelModelConfig(drawn_share=0.5)  # from a half on, draws would move the boundary


def test_draw_offsets_keep_each_groups_thresholded_rate() -> None:
    rng = np.random.default_rng(7)
    groups = rng.integers(0, 2, 4000)
    logits = rng.normal(size=4000) * 2.0 + 1.5 * groups
    thresholds = parity_thresholds(logits, 0.3, groups, count=3)
    offsets = draw_offsets(logits, groups, thresholds, np.ones(3))
    for group in (0, 1):
        margins = logits[groups == group] - thresholds[group]
        chance = 1.0 / (1.0 + np.exp(-(margins + offsets[group])))
        assert chance.mean() == pytest.approx((margins >= 0).mean(), abs=1e-4)
    assert offsets[2] == 0.0  # a group without rows


def test_a_drawn_share_labels_that_share_by_chance_at_each_groups_rate() -> None:
    table = biased_table(20_000, seed=3)
    torch.manual_seed(0)
    model = FeatureLabelModel(2, [2], [0, 1], [16], bins=8)
    config = LabelModelConfig(epochs=4, drawn_share=0.3)
    fit_label_model(model, table, config, "demographic_parity", seed=0, device=torch.device("cpu"))
    assert float(model.drawn_share) == pytest.approx(0.3)

    def labels(seed: int) -> np.ndarray:
        return decided_labels(model, table, seed)

    drawn = labels(1)
    model.drawn_share.zero_()
    thresholded = labels(1)
    rate = table.label.mean()
    for group in (0, 1):
        rows = table.sensitive[:, 0] == group
        assert abs(drawn[rows].mean() - rate) < 0.02
    # Some drawn labels go against the threshold, most agree with it; none of the rows
    # far below the boundary of a group is positive by the threshold, some are by a draw.
    disagree = (drawn != thresholded).mean()
    assert 0.01 < disagree < 0.3 * 0.5
    assert (
        thresholded[table.features[:, 0] < -1.0].sum()
        == 0
        < drawn[table.features[:, 0] < -1.0].sum()
    )
    model.drawn_share.fill_(0.3)
    assert np.array_equal(drawn, labels(1)) and not np.array_equal(drawn, labels(2))


def test_a_label_model_stored_without_drawn_labels_loads_and_thresholds_every_row() -> None:
    model = FeatureLabelModel(2, [2], [0, 1], [8], bins=4)
    stored = {
        name: value
        for name, value in model.state_dict().items()
        if name not in ("drawn_share", "draw_offsets")
    }
    stored["thresholds"] = torch.tensor([0.5, -0.5])
    again = FeatureLabelModel(2, [2], [0, 1], [8], bins=4)
    again.load_state_dict(stored)
    assert float(again.drawn_share) == 0.0 and torch.equal(again.thresholds, stored["thresholds"])
