"""The shared TRTR/TSTR/TSTS loop, driven by stand-in classifiers: which frames train and test
what, the scores at the threshold, and outcomes that train nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pytest

from fairdistill.models.evaluation.protocols import (
    PROTOCOLS,
    UTILITY_METRICS,
    NoClassifierError,
    protocol_results,
    utility_scores,
)
from fairdistill.models.spec import DatasetSpec, complete_spec


def frame(name: str, score: list[float], label: list[str]) -> pl.DataFrame:
    """Rows whose ``score`` column is what the stand-in classifier predicts."""
    groups = ["a", "b"] * (len(score) // 2) + ["a"] * (len(score) % 2)
    return pl.DataFrame({"source": [name] * len(score), "score": score, "s": groups, "y": label})


REAL_TRAIN = frame("real_train", [0.9, 0.2, 0.8, 0.1], ["yes", "no", "yes", "no"])
REAL_TEST = frame("real_test", [0.7, 0.4, 0.6, 0.3], ["yes", "no", "yes", "no"])
# Split by the stand-in below: the first two rows train TSTS (scored, they would give
# accuracy 0.5), the last two test it.
SYNTHETIC = frame("synthetic", [0.35, 0.45, 0.9, 0.1], ["yes", "no", "yes", "no"])


@pytest.fixture(scope="module")
def spec() -> DatasetSpec:
    spec = DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": {"column": "y", "positive": "yes"},
            "sensitive": [{"column": "s", "privileged": ["a"]}],
        }
    )
    return complete_spec(spec, pl.concat([REAL_TRAIN, REAL_TEST, SYNTHETIC]))


@dataclass(frozen=True)
class ScoreColumn:
    """A 'classifier' that predicts a frame's score column, reversed when trained on the whole
    synthetic frame (so TSTR ranks the real test rows backwards)."""

    family: str
    trained_on: str

    def positive_probability(self, frame: pl.DataFrame) -> np.ndarray:
        score = frame.get_column("score").to_numpy()
        return 1.0 - score if self.trained_on == "synthetic" else score


@dataclass
class StandInClassifiers:
    split_reason: str | None = None
    refuse: set[str] = field(default_factory=set)  # sources whose training is refused
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    extras: list[tuple[str, str]] = field(default_factory=list)

    def split_synthetic(
        self, synthetic: pl.DataFrame, seed: int
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        if self.split_reason is not None:
            raise NoClassifierError(self.split_reason)
        renamed = synthetic.with_columns(pl.lit("synthetic_part").alias("source"))
        return renamed.head(2), renamed.tail(2)

    def fit(self, family: str, train: pl.DataFrame, test: pl.DataFrame, seed: int) -> ScoreColumn:
        source = train.get_column("source")[0]
        self.calls.append((family, source, test.get_column("source")[0]))
        if source in self.refuse:
            raise NoClassifierError(f"refused {source}")
        return ScoreColumn(family, source)

    def extra_scores(
        self, protocol: str, model: ScoreColumn, labels: np.ndarray, predictions: np.ndarray
    ) -> dict[str, Any]:
        self.extras.append((protocol, model.trained_on))
        return {"extra": protocol}

    def untrained_extras(self) -> dict[str, Any]:
        return {"extra": None}


def run(spec: DatasetSpec, classifiers: StandInClassifiers) -> dict[str, dict[str, Any]]:
    families = ("first", "second")
    return protocol_results(REAL_TRAIN, REAL_TEST, SYNTHETIC, spec, 0, families, classifiers)


def test_each_protocol_trains_and_tests_on_its_own_frames(spec) -> None:
    classifiers = StandInClassifiers()
    results = run(spec, classifiers)
    expected = [
        ("real_train", "real_test"),
        ("synthetic", "real_test"),
        ("synthetic_part", "synthetic_part"),
    ]
    assert classifiers.calls == [
        (family, *pair) for family in ("first", "second") for pair in expected
    ]
    assert classifiers.extras[:3] == [
        ("trtr", "real_train"),
        ("tstr", "synthetic"),
        ("tsts", "synthetic_part"),
    ]
    assert list(results) == ["first", "second"]
    for protocol in PROTOCOLS:
        outcome = results["first"][protocol]
        assert list(outcome) == ["trained", "reason", "utility", "fairness", "extra"]
        assert outcome["trained"] and outcome["reason"] is None and outcome["extra"] == protocol
        assert list(outcome["fairness"]) == ["s"]


def test_scores_and_the_ratio_to_trtr(spec) -> None:
    family = run(spec, StandInClassifiers())["first"]
    assert family["trtr"]["utility"]["auroc"] == 1.0
    assert family["tstr"]["utility"]["auroc"] == 0.0
    assert family["tstr"]["utility"]["accuracy"] == 0.0
    # The TSTS test part holds 0.9 (yes) and 0.1 (no).
    assert family["tsts"]["utility"]["accuracy"] == 1.0
    # TSTR over TRTR; the other way round would divide by zero (NaN).
    assert family["auroc_ratio_to_trtr"] == 0.0


def test_a_refused_training_gives_nan_metrics_with_its_reason(spec) -> None:
    results = run(spec, StandInClassifiers(refuse={"synthetic"}))
    trtr, tstr = results["first"]["trtr"], results["first"]["tstr"]
    assert trtr["trained"]
    assert not tstr["trained"] and tstr["reason"] == "refused synthetic"
    assert tstr["extra"] is None
    assert all(math.isnan(tstr["utility"][name]) for name in UTILITY_METRICS)
    assert all(math.isnan(value) for value in tstr["fairness"]["s"].values())
    assert math.isnan(results["first"]["auroc_ratio_to_trtr"])


def test_a_refused_split_leaves_tsts_untrained_and_the_others_trained(spec) -> None:
    classifiers = StandInClassifiers(split_reason="too few rows")
    family = run(spec, classifiers)["first"]
    assert family["trtr"]["trained"] and family["tstr"]["trained"]
    assert not family["tsts"]["trained"] and family["tsts"]["reason"] == "too few rows"
    assert all(pair[1] != "synthetic_part" for pair in classifiers.calls)


def test_utility_scores_threshold_at_one_half_inclusive() -> None:
    labels = np.array([1, 0, 1, 0])
    scores = utility_scores(labels, np.array([0.5, 0.49, 0.2, 0.1]))
    assert scores["positive_prediction_rate"] == 0.25
    assert scores["accuracy"] == 0.75
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["auroc"] == pytest.approx(0.75)


def test_auroc_is_nan_on_one_class_and_f1_is_zero_without_positives() -> None:
    scores = utility_scores(np.zeros(3, dtype=np.int64), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(scores["auroc"])
    assert scores["f1"] == 0.0 and scores["accuracy"] == 1.0
