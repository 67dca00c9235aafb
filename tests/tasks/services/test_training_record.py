"""The latent sample a training stage keeps for the report: seeded, small, with real groups."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
import torch

from fairdistill.models.codec import TabularCodec
from fairdistill.models.spec import DatasetSpec, complete_spec
from fairdistill.models.teacher import FairVAE, TeacherConfig, encode_latents
from fairdistill.tasks.services.storage import parquet_bytes
from fairdistill.tasks.services.training_record import latent_sample, split_latent_sample


@pytest.fixture(scope="module")
def trained_parts() -> tuple[torch.nn.Module, TabularCodec, pl.DataFrame]:
    rng = np.random.default_rng(0)
    rows = 300
    frame = pl.DataFrame(
        {
            "sex": rng.choice(["female", "male"], rows),
            "race": rng.choice(["a", "b", "c"], rows),
            "age": rng.integers(18, 90, rows),
            "y": rng.choice(["no", "yes"], rows),
        }
    )
    spec = complete_spec(
        DatasetSpec.model_validate(
            {
                "name": "toy",
                "target": {"column": "y", "positive": "yes"},
                "sensitive": [
                    {"column": "sex", "privileged": ["male"]},
                    {"column": "race", "privileged": ["a"]},
                ],
            }
        ),
        frame,
    )
    codec = TabularCodec.fit(frame, spec)
    torch.manual_seed(0)
    model = FairVAE.build(
        codec.blocks, codec.sensitive_level_counts, TeacherConfig(hidden=(8,), latent_dim=3)
    )
    return model.encoder, codec, frame


def test_the_sample_holds_latents_and_the_rows_real_groups(trained_parts) -> None:
    encoder, codec, frame = trained_parts
    table = codec.encode(frame)
    sample = latent_sample(encoder, table, codec, seed=4, rows=50)
    assert sample.height == 50
    assert sample.columns == ["latent", "sensitive.sex", "sensitive.race"]
    latents, groups = split_latent_sample(pl.read_parquet(io.BytesIO(parquet_bytes(sample))))
    assert latents.shape == (50, 3)
    chosen = np.sort(np.random.default_rng(4).choice(len(table), size=50, replace=False))
    assert groups["sex"] == frame["sex"].gather(chosen).to_list()
    assert groups["race"] == frame["race"].gather(chosen).to_list()
    every_latent = encode_latents(encoder, table, codec.sensitive_level_counts)
    np.testing.assert_allclose(latents, every_latent[chosen], rtol=1e-6)


def test_the_sample_is_seeded_and_never_larger_than_the_table(trained_parts) -> None:
    encoder, codec, frame = trained_parts
    table = codec.encode(frame)
    first = latent_sample(encoder, table, codec, seed=1, rows=40)
    assert parquet_bytes(first) == parquet_bytes(latent_sample(encoder, table, codec, 1, 40))
    assert not first.equals(latent_sample(encoder, table, codec, seed=2, rows=40))
    assert latent_sample(encoder, table, codec, seed=1).height == len(table)
