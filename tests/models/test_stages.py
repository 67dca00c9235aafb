"""The pipeline's recipe as plain functions (models/stages.py), run without orchestration."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from fairdistill.data import bundled_dataset
from fairdistill.models.codec import TabularCodec
from fairdistill.models.config import GenerateConfig
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.stages import sample_rows
from fairdistill.models.teacher import FairVAE, TeacherConfig

LATENT_DIM = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def codec(adult_sample: pl.DataFrame) -> TabularCodec:
    bundled = bundled_dataset("adult")
    spec = complete_spec(load_spec(bundled.spec_path), adult_sample)
    return TabularCodec.fit(adult_sample, spec)


@pytest.fixture(scope="module")
def teacher(codec: TabularCodec) -> FairVAE:
    torch.manual_seed(0)
    config = TeacherConfig(hidden=(16,), latent_dim=LATENT_DIM)
    return FairVAE.build(codec.blocks, codec.sensitive_level_counts, config)


def _prior() -> GaussianMixturePrior:
    codes = np.random.default_rng(0).normal(size=(300, LATENT_DIM))
    return GaussianMixturePrior.fit(codes, 3, seed=0)


def test_sampled_rows_have_the_asked_count_and_mix_and_repeat_for_a_seed(
    codec: TabularCodec, teacher: FairVAE, adult_sample: pl.DataFrame
) -> None:
    real_sensitive = codec.encode(adult_sample).sensitive
    settings = GenerateConfig(rows=501, sensitive_mix="balanced")
    first = sample_rows(teacher, _prior(), real_sensitive, codec, settings, 501, seed=0)
    again = sample_rows(teacher, _prior(), real_sensitive, codec, settings, 501, seed=0)
    assert first.features.shape == (501, codec.feature_dim)
    np.testing.assert_array_equal(first.features, again.features)
    np.testing.assert_array_equal(first.label, again.label)
    # Adult's one sensitive attribute has two levels: balanced means 251 and 250.
    _, counts = np.unique(first.sensitive, axis=0, return_counts=True)
    assert sorted(counts.tolist()) == [250, 251]
    frame = codec.decode(first.features, first.sensitive, first.label)
    assert frame.height == 501
    assert set(frame.columns) == set(adult_sample.columns)


def test_another_seed_gives_other_rows(
    codec: TabularCodec, teacher: FairVAE, adult_sample: pl.DataFrame
) -> None:
    real_sensitive = codec.encode(adult_sample).sensitive
    rows = [
        sample_rows(teacher, _prior(), real_sensitive, codec, GenerateConfig(), 200, seed=seed)
        for seed in (0, 1)
    ]
    assert not np.array_equal(rows[0].features, rows[1].features)
