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


def test_check_table_completes_the_spec_and_reports_without_raising(
    adult_sample: pl.DataFrame,
) -> None:
    from fairdistill.models.stages import check_table

    spec = load_spec(bundled_dataset("adult").spec_path)
    checked = check_table(adult_sample, spec, source="adult.parquet")
    assert checked.report.success
    assert checked.spec.columns["age"].type == "integer"
    tightened = spec.model_copy(update={"min_rows": 10_000})
    refused = check_table(adult_sample, tightened, source="adult.parquet")
    assert not refused.report.success  # reported, not raised: the task records it first


def test_prepare_tables_splits_stratified_and_fits_the_codec_on_train(
    adult_sample: pl.DataFrame,
) -> None:
    from fairdistill.models.config import PrepareConfig
    from fairdistill.models.stages import prepare_tables

    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), adult_sample)
    prepared = prepare_tables(adult_sample, spec, PrepareConfig(test_fraction=0.25), seed=3)
    assert prepared.train.height + prepared.test.height == adult_sample.height
    for part in (prepared.train, prepared.test):
        share = part.filter(pl.col("sex") == "Female").height / part.height
        overall = adult_sample.filter(pl.col("sex") == "Female").height / adult_sample.height
        assert abs(share - overall) < 0.01
    again = prepare_tables(adult_sample, spec, PrepareConfig(test_fraction=0.25), seed=3)
    assert again.test.equals(prepared.test)
    assert prepared.codec.to_dict() == TabularCodec.fit(prepared.train, spec).to_dict()


def test_a_declared_split_is_kept_as_the_data_marks_it(adult_sample: pl.DataFrame) -> None:
    from fairdistill.models.config import PrepareConfig
    from fairdistill.models.stages import prepare_tables

    marked = adult_sample.with_columns(
        part=pl.when(pl.int_range(pl.len()) < 100).then(pl.lit("test")).otherwise(pl.lit("train"))
    )
    spec = load_spec(bundled_dataset("adult").spec_path).model_copy(update={"split_column": "part"})
    spec = complete_spec(spec, marked)
    prepared = prepare_tables(marked, spec, PrepareConfig(), seed=0)
    assert prepared.test.height == 100 and set(prepared.test["part"]) == {"test"}


def test_the_training_recipe_runs_end_to_end_without_orchestration(
    codec: TabularCodec, adult_sample: pl.DataFrame
) -> None:
    from fairdistill.models.config import EvaluateConfig
    from fairdistill.models.stages import (
        TrainingHooks,
        evaluate_rows,
        fit_latent_prior,
        fit_student,
        fit_teacher,
        probe_latent,
    )
    from fairdistill.models.student import StudentConfig

    train, test = adult_sample.head(2400), adult_sample.tail(600)
    table = codec.encode(train)
    epochs: list[int] = []
    teacher = fit_teacher(
        codec,
        table,
        TeacherConfig(epochs=2, hidden=(32, 32), latent_dim=LATENT_DIM),
        seed=0,
        hooks=TrainingHooks(on_epoch=lambda epoch, metrics: epochs.append(epoch)),
    )
    assert epochs == [0, 1] and len(teacher.history) == 2
    student = fit_student(teacher.model, codec, table, StudentConfig(epochs=1, hidden=(4,)), seed=0)
    assert set(probe_latent(student.encoder, table, codec, seed=0)) == {"sex"}
    fitted = fit_latent_prior(
        student.encoder, table, codec, GenerateConfig(prior_components=2), seed=0
    )
    encoded = sample_rows(
        teacher.model, fitted.prior, table.sensitive, codec, GenerateConfig(), 400, seed=0
    )
    synthetic = codec.decode(encoded.features, encoded.sensitive, encoded.label)
    assert synthetic.height == 400
    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), adult_sample)
    only_logistic = EvaluateConfig(families=("logistic_regression",), max_rows=200)
    result = evaluate_rows(train, test, synthetic, spec, only_logistic, seed=0)
    assert "tstr.logistic_regression.auroc" in result.metrics
    assert not any(key.startswith("tstr.gradient_boosting") for key in result.metrics)


def test_the_prior_follows_where_the_label_comes_from(
    codec: TabularCodec, teacher: FairVAE, adult_sample: pl.DataFrame
) -> None:
    """A label model on decoded features: components scaled to the rows, latents drawn
    with the posteriors' spread where the means lack it. A label head on the latent: ten
    components on the means, the prior its head was trained for."""
    from fairdistill.models.prior import components_for_rows
    from fairdistill.models.stages import fit_latent_prior

    table = codec.encode(adult_sample.head(1500))
    settings = GenerateConfig()
    features = fit_latent_prior(teacher.encoder, table, codec, settings, seed=0)
    head = fit_latent_prior(
        teacher.encoder, table, codec, settings, seed=0, labels_from_features=False
    )
    assert head.prior.n_components == 10
    assert features.prior.n_components <= components_for_rows(len(table))
    assert features.prior.n_components > 10
    # An untrained encoder's posteriors are wide around close means: every dimension widens.
    spread = features.prior.sample(5000, seed=1).std(axis=0)
    assert (spread > 2 * head.prior.sample(5000, seed=1).std(axis=0)).all()
    assert head.prior.group_weights is None and features.prior.group_weights is not None
