from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.codec import (
    MISSING_LABEL,
    NULL_INDICATOR_SUFFIX,
    SPIKE_INDICATOR_SUFFIX,
    TabularCodec,
    interpolate_evenly_spaced,
)
from fairdistill.models.errors import CheckpointError, DataValidationError, SpecError
from fairdistill.models.spec import ColumnSpec, DatasetSpec, complete_spec

NUMERIC_COLUMNS = [
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
]


def adult_spec(**updates: object) -> DatasetSpec:
    raw = {
        "name": "adult",
        "target": {"column": "income", "positive": ">50K"},
        "sensitive": [{"column": "sex", "privileged": ["Male"]}],
    }
    return DatasetSpec.model_validate({**raw, **updates})


@pytest.fixture(scope="module")
def adult_raw() -> pl.DataFrame:
    """Adult as the pipeline sees it: the bundled, cleaned table."""
    return pl.read_parquet(bundled_dataset("adult").data_path)


@pytest.fixture(scope="module")
def adult_codec(adult_raw: pl.DataFrame) -> TabularCodec:
    return TabularCodec.fit(adult_raw, complete_spec(adult_spec(), adult_raw))


def numeric_frame() -> pl.DataFrame:
    """A small frame with nulls in numeric columns and a constant column."""
    rng = np.random.default_rng(3)
    n = 400
    hours = rng.integers(1, 80, n).astype(float)
    hours[rng.random(n) < 0.2] = np.nan
    income = rng.lognormal(10, 1, n)
    income[rng.random(n) < 0.1] = np.nan
    return pl.DataFrame(
        {
            "hours": pl.Series(hours).fill_nan(None).cast(pl.Int64),
            "income": pl.Series(income).fill_nan(None),
            "constant": np.full(n, 7.5),
            "group": rng.choice(["a", "b", "c"], n),
            "label": rng.choice(["no", "yes"], n),
        }
    )


def numeric_spec(frame: pl.DataFrame) -> DatasetSpec:
    spec = DatasetSpec.model_validate(
        {
            "name": "synthetic",
            "target": {"column": "label", "positive": "yes"},
            "sensitive": [{"column": "group", "privileged": ["a"]}],
        }
    )
    return complete_spec(spec, frame)


def test_adult_round_trip_restores_every_value(adult_raw: pl.DataFrame, adult_codec: TabularCodec):
    encoded = adult_codec.encode(adult_raw)
    decoded = adult_codec.decode(encoded.features, encoded.sensitive, encoded.label)

    assert decoded.columns == adult_raw.columns
    assert decoded.schema == adult_raw.schema  # Int64 numerics, String categoricals
    for name in adult_raw.columns:
        original, restored = adult_raw.get_column(name), decoded.get_column(name)
        assert (original.is_null() == restored.is_null()).all(), name
        if name in NUMERIC_COLUMNS:
            iqr = original.quantile(0.75) - original.quantile(0.25)
            tolerance = 1e-3 * max(iqr, 1.0)
            assert (original - restored).abs().max() <= tolerance, name
            assert restored.min() >= original.min() and restored.max() <= original.max()
        else:
            assert original.eq_missing(restored).all(), name
    assert adult_raw.get_column("workclass").null_count() > 0  # nulls were really exercised


def test_adult_encoding_layout(adult_raw: pl.DataFrame, adult_codec: TabularCodec):
    encoded = adult_codec.encode(adult_raw)

    assert encoded.features.dtype == np.float32
    assert encoded.features.shape == (adult_raw.height, adult_codec.feature_dim)
    assert encoded.sensitive.dtype == np.int64 and encoded.sensitive.shape == (adult_raw.height, 1)
    assert adult_codec.sensitive_levels == [("Female", "Male")]
    assert adult_codec.sensitive_level_counts == [2]
    assert adult_codec.label_levels == ("<=50K", ">50K")
    positive = (adult_raw.get_column("income") == ">50K").to_numpy()
    assert np.array_equal(encoded.label, positive.astype(np.int64))
    assert [block.column for block in adult_codec.blocks][:3] == ["age", "workclass", "fnlwgt"]
    assert "sex" not in adult_codec.feature_columns and "income" not in adult_codec.feature_columns
    for block in adult_codec.blocks:
        part = encoded.features[:, block.start : block.stop]
        if block.kind == "categorical":
            assert np.array_equal(part.sum(axis=1), np.ones(adult_raw.height)), block.column
        else:
            assert np.isfinite(part).all() and np.abs(part).max() < 5.3
    fnlwgt = next(block for block in adult_codec.blocks if block.column == "fnlwgt")
    scores = encoded.features[:, fnlwgt.start]
    assert abs(scores.mean()) < 0.01 and abs(scores.std() - 1.0) < 0.02
    # workclass has nulls: seen levels sorted, then a null level.
    workclass = next(block for block in adult_codec.blocks if block.column == "workclass")
    assert workclass.width == adult_raw.get_column("workclass").n_unique()


def test_json_round_trip_gives_identical_encodings(
    adult_raw: pl.DataFrame, adult_codec: TabularCodec
):
    restored = TabularCodec.from_dict(json.loads(json.dumps(adult_codec.to_dict())))
    sample = adult_raw.head(2000)
    first, second = adult_codec.encode(sample), restored.encode(sample)

    assert restored.to_dict() == adult_codec.to_dict()
    assert restored.blocks == adult_codec.blocks
    assert np.array_equal(first.features, second.features)
    assert np.array_equal(first.sensitive, second.sensitive)
    decoded = restored.decode(first.features, first.sensitive, first.label)
    assert decoded.equals(adult_codec.decode(first.features, first.sensitive, first.label))


def test_unseen_category_encodes_as_most_frequent_level(
    adult_raw: pl.DataFrame, adult_codec: TabularCodec
):
    fresh = adult_raw.head(5).with_columns(pl.lit("Space-agency").alias("workclass"))
    encoded = adult_codec.encode(fresh)
    decoded = adult_codec.decode(encoded.features, encoded.sensitive, encoded.label)

    most_frequent = adult_raw.get_column("workclass").drop_nulls().mode().item()
    assert decoded.get_column("workclass").to_list() == [most_frequent] * 5


def test_quantile_count_is_capped(adult_raw: pl.DataFrame):
    codec = TabularCodec.fit(adult_raw, complete_spec(adult_spec(), adult_raw), quantiles=50)
    stored = [column["quantiles"] for column in codec.to_dict()["columns"] if "quantiles" in column]
    assert len(stored) == len(NUMERIC_COLUMNS)
    assert all(len(quantiles) <= 50 for quantiles in stored)


def test_numeric_nulls_get_an_indicator_block_and_come_back():
    frame = numeric_frame()
    codec = TabularCodec.fit(frame, numeric_spec(frame))
    encoded = codec.encode(frame)
    decoded = codec.decode(encoded.features, encoded.sensitive, encoded.label)

    names = [block.column for block in codec.blocks]
    assert names == [
        "hours",
        "hours" + NULL_INDICATOR_SUFFIX,
        "income",
        "income" + NULL_INDICATOR_SUFFIX,
        "constant",
    ]
    hours = codec.blocks[0]
    null_rows = frame.get_column("hours").is_null().to_numpy()
    assert np.all(encoded.features[null_rows, hours.start] == 0.0)
    assert np.array_equal(encoded.features[:, hours.start + 2], null_rows.astype(np.float32))
    assert decoded.schema["hours"] == pl.Int64 and decoded.schema["income"] == pl.Float64
    for name in ("hours", "income"):
        assert (
            decoded.get_column(name).is_null().to_list()
            == frame.get_column(name).is_null().to_list()
        )
    relative = (decoded.get_column("income") / frame.get_column("income") - 1).abs().max()
    assert relative < 1e-4
    assert decoded.get_column("hours").eq_missing(frame.get_column("hours")).all()


def test_constant_numeric_column_encodes_to_zero_and_decodes_to_itself():
    frame = numeric_frame()
    codec = TabularCodec.fit(frame, numeric_spec(frame))
    encoded = codec.encode(frame)
    constant = next(block for block in codec.blocks if block.column == "constant")

    assert np.all(encoded.features[:, constant.start] == 0.0)
    noisy = encoded.features.copy()
    noisy[:, constant.start] = np.random.default_rng(0).normal(0, 3, len(frame))
    decoded = codec.decode(noisy, encoded.sensitive, encoded.label)
    assert decoded.get_column("constant").unique().to_list() == [7.5]


def zero_inflated_frame() -> pl.DataFrame:
    """A capital-loss-like column: zero for about 80 % of rows, lognormal otherwise, and
    a few nulls; ``hours`` has a most common value below half of the rows."""
    rng = np.random.default_rng(5)
    n = 1000
    loss = np.where(rng.random(n) < 0.8, 0.0, np.rint(rng.lognormal(7, 0.5, n) + 1))
    loss[rng.random(n) < 0.05] = np.nan
    hours = np.where(rng.random(n) < 0.4, 40, rng.integers(1, 80, n))
    return pl.DataFrame(
        {
            "loss": pl.Series(loss).fill_nan(None).cast(pl.Int64),
            "hours": hours,
            "group": rng.choice(["a", "b"], n),
            "label": rng.choice(["no", "yes"], n),
        }
    )


def test_a_value_held_by_half_the_rows_gets_a_spike_block_and_comes_back():
    frame = zero_inflated_frame()
    codec = TabularCodec.fit(frame, numeric_spec(frame))
    encoded = codec.encode(frame)
    decoded = codec.decode(encoded.features, encoded.sensitive, encoded.label)

    assert [block.column for block in codec.blocks] == [
        "loss",
        "loss" + NULL_INDICATOR_SUFFIX,
        "loss" + SPIKE_INDICATOR_SUFFIX,
        "hours",  # 40 holds about 40 % of the rows: below half, so no spike block
    ]
    loss = frame.get_column("loss")
    at_spike = (loss == 0).fill_null(False).to_numpy()
    start = codec.blocks[0].start
    assert np.array_equal(encoded.features[:, start + 4], at_spike.astype(np.float32))
    assert np.all(encoded.features[at_spike | loss.is_null().to_numpy(), start] == 0.0)
    # The score describes the other values alone: standard normal over them.
    other = encoded.features[~at_spike & loss.is_not_null().to_numpy(), start]
    assert np.allclose(np.quantile(other, [0.25, 0.5, 0.75]), [-0.674, 0.0, 0.674], atol=0.1)
    assert decoded.get_column("loss").eq_missing(loss).all()
    assert decoded.get_column("hours").equals(frame.get_column("hours"))


def test_the_spike_indicator_alone_decides_whether_a_row_takes_the_spike():
    frame = zero_inflated_frame()
    codec = TabularCodec.fit(frame, numeric_spec(frame))
    encoded = codec.encode(frame.head(2))
    start = codec.blocks[0].start
    features = np.zeros((2, codec.feature_dim), dtype=np.float32)
    features[:, start] = -5.0  # the lowest score there is
    features[:, start + 1] = 1.0  # not null
    features[:, start + 3 : start + 5] = [[0.7, 0.3], [0.3, 0.7]]  # not spike, spike
    decoded = codec.decode(features, encoded.sensitive, encoded.label)

    smallest_other = frame.get_column("loss").filter(frame.get_column("loss") > 0).min()
    assert decoded.get_column("loss").to_list() == [smallest_other, 0]


def test_a_codec_stored_without_spikes_still_loads():
    frame = zero_inflated_frame()
    state = TabularCodec.fit(frame, numeric_spec(frame)).to_dict()
    for column in state["columns"]:
        column.pop("spike", None)
    restored = TabularCodec.from_dict(state)
    assert [block.column for block in restored.blocks] == [
        "loss",
        "loss" + NULL_INDICATOR_SUFFIX,
        "hours",
    ]


def test_decode_takes_argmax_of_probabilities_and_clips_to_spec_bounds(
    adult_raw: pl.DataFrame,
):
    spec = complete_spec(adult_spec(columns={"age": ColumnSpec(min=20, max=60)}), adult_raw)
    codec = TabularCodec.fit(adult_raw, spec)
    encoded = codec.encode(adult_raw.head(200))
    rng = np.random.default_rng(1)
    soft = encoded.features.copy()
    for block in codec.blocks:
        if block.kind == "categorical":
            noise = rng.uniform(0, 0.3, (len(soft), block.width)).astype(np.float32)
            soft[:, block.start : block.stop] = 0.6 * soft[:, block.start : block.stop] + noise
    age = codec.blocks[0]
    soft[:100, age.start] = 40.0
    soft[100:, age.start] = -40.0

    decoded = codec.decode(soft, encoded.sensitive, encoded.label)
    reference = codec.decode(encoded.features, encoded.sensitive, encoded.label)
    assert decoded.drop("age").equals(reference.drop("age"))
    assert decoded.get_column("age").to_list() == [60] * 100 + [20] * 100


def test_frames_without_target_encode_with_missing_label(
    adult_raw: pl.DataFrame, adult_codec: TabularCodec
):
    features_only = adult_raw.head(10).drop("income")
    encoded = adult_codec.encode(features_only, with_label=False)

    assert np.all(encoded.label == MISSING_LABEL)
    decoded = adult_codec.decode(encoded.features, encoded.sensitive, encoded.label)
    assert decoded.get_column("income").null_count() == 10
    with pytest.raises(DataValidationError, match="income"):
        adult_codec.encode(features_only)


def test_several_sensitive_attributes_and_ignored_columns(adult_raw: pl.DataFrame):
    spec = adult_spec(
        sensitive=[
            {"column": "sex", "privileged": ["Male"]},
            {"column": "race", "privileged": ["White"]},
        ],
        columns={"fnlwgt": ColumnSpec(role="ignore")},
    )
    codec = TabularCodec.fit(adult_raw, complete_spec(spec, adult_raw))
    encoded = codec.encode(adult_raw.head(300))
    decoded = codec.decode(encoded.features, encoded.sensitive, encoded.label)

    assert codec.sensitive_level_counts == [2, 5]
    assert encoded.sensitive.shape == (300, 2)
    assert "fnlwgt" not in codec.columns_out and "fnlwgt" not in decoded.columns
    assert decoded.columns == [name for name in adult_raw.columns if name != "fnlwgt"]
    assert decoded.get_column("race").equals(adult_raw.head(300).get_column("race"))


def test_unknown_sensitive_level_and_label_are_refused(
    adult_raw: pl.DataFrame, adult_codec: TabularCodec
):
    with pytest.raises(DataValidationError, match="Unknown") as error:
        adult_codec.encode(adult_raw.head(3).with_columns(pl.lit("Unknown").alias("sex")))
    assert error.value.column == "sex"
    with pytest.raises(DataValidationError, match=r">50K\.") as error:
        adult_codec.encode(adult_raw.head(3).with_columns(pl.lit(">50K.").alias("income")))
    assert error.value.column == "income"


def test_non_binary_target_is_refused(adult_raw: pl.DataFrame):
    spec = adult_spec(target={"column": "race", "positive": "White"})
    with pytest.raises(SpecError, match="two classes"):
        TabularCodec.fit(adult_raw, complete_spec(spec, adult_raw))


def test_decode_refuses_wrong_shapes(adult_raw: pl.DataFrame, adult_codec: TabularCodec):
    encoded = adult_codec.encode(adult_raw.head(4))
    with pytest.raises(ValueError, match="features"):
        adult_codec.decode(encoded.features[:, 1:], encoded.sensitive, encoded.label)
    with pytest.raises(ValueError, match="sensitive level"):
        adult_codec.decode(encoded.features, encoded.sensitive + 5, encoded.label)


def test_empty_frame_encodes_and_decodes(adult_raw: pl.DataFrame, adult_codec: TabularCodec):
    encoded = adult_codec.encode(adult_raw.head(0))
    assert encoded.features.shape == (0, adult_codec.feature_dim)
    decoded = adult_codec.decode(encoded.features, encoded.sensitive, encoded.label)
    assert decoded.height == 0 and decoded.schema == adult_raw.schema


def test_stored_codec_of_another_format_is_refused(adult_codec: TabularCodec):
    state = {**adult_codec.to_dict(), "version": 99}
    with pytest.raises(CheckpointError, match="version"):
        TabularCodec.from_dict(state)


@pytest.mark.parametrize(
    "quantiles",
    [np.sort(np.random.default_rng(1).normal(size=1000)), np.array([3.0, 9.0]), np.full(5, 7.5)],
)
def test_fast_quantile_interpolation_matches_numpy(quantiles: np.ndarray) -> None:
    cumulative = np.concatenate([[0.0, 1.0, 0.5], np.random.default_rng(2).random(10_000)])
    expected = np.interp(cumulative, np.linspace(0.0, 1.0, quantiles.size), quantiles)
    np.testing.assert_allclose(
        interpolate_evenly_spaced(cumulative, quantiles), expected, rtol=0, atol=1e-12
    )
    assert np.isnan(interpolate_evenly_spaced(np.array([np.nan]), quantiles)).all()
