"""All evaluation metrics of synthetic images against the held-out real images.

The image counterpart of :func:`~fairdistill.models.evaluation.report.evaluate_synthetic`:
the same :class:`EvaluationResult`, the same metric names where the measure is the same, so
gates, manifests and reports read both alike. What differs is what a row is:

- utility and fairness: the classifier families are ``cnn`` and ``logistic_regression`` on
  pixels (see ``image_classifiers.py``), under the same TRTR, TSTR and TSTS protocols:
  ``<protocol>.<family>.{auroc,f1,accuracy,positive_prediction_rate,trained}``,
  ``<protocol>.<family>.<attr>.{demographic_parity_ratio,...}``,
  ``tstr.<family>.auroc_ratio_to_trtr``;
- reliance on the sensitive attribute (TRTR and TSTR, attributes with two values, colour
  images): every real test image is re-tinted as if it belonged to the other group, and
  ``<protocol>.<family>.<attr>.flipped_accuracy`` is the accuracy on those images,
  ``<protocol>.<family>.<attr>.flip_rate`` the share of predictions the flip changes (0: the
  classifier ignores the tint). An image counts as a grey intensity (the sum of its channels)
  times its group's colour profile (each channel's mean share of the ink in that group's
  real training images); the flip keeps the intensity and swaps the profile. That is exact
  for tinted images such as the bundled coloured digits, and meaningless for an attribute
  the image does not show as a tint;
- fidelity: alpha-precision, beta-recall, authenticity, density and coverage in a fixed
  embedding, the first principal components of the real training pixels; marginals and
  associations over a per-image summary (label, sensitive attributes, the mean of each
  channel ``channel_<c>_mean`` and ``ink_share``, the share of pixels whose brightest
  channel exceeds half the range). ``fidelity.correlation_difference`` includes the
  association between label and sensitive attribute, which fair data is meant to change;
- privacy: exact copies of training images and distance to closest record in the embedding.

Only the label, the sensitive attributes and the pixels are compared; other columns (a split
column, identifiers) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import polars as pl
from sklearn.decomposition import PCA

from fairdistill.models.evaluation.fairness import positive_labels
from fairdistill.models.evaluation.fidelity import DEFAULT_MAX_ROWS, NEIGHBOURS
from fairdistill.models.evaluation.image_classifiers import (
    IMAGE_FAMILIES,
    ImageClassifier,
    ImageFamily,
    train_image_classifier,
)
from fairdistill.models.evaluation.protocols import (
    DECISION_THRESHOLD,
    TSTS_TEST_SHARE,
    NoClassifierError,
    protocol_results,
)
from fairdistill.models.evaluation.report import (
    EvaluationResult,
    check_columns,
    metric_name,
    record_copies,
    record_data,
    record_distances,
    record_fidelity,
    record_utility,
    rows_with_target,
    timed,
)
from fairdistill.models.spec import ColumnSpec, DatasetSpec, ImageSpec

EMBEDDING_COMPONENTS = 16
INK_THRESHOLD = 0.5
FLIP_PROTOCOLS = ("trtr", "tstr")


def evaluate_images(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    *,
    seed: int,
    families: Sequence[ImageFamily] = IMAGE_FAMILIES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> EvaluationResult:
    """Fairness, utility, fidelity and privacy of synthetic images (see the module notes)."""
    image = _image_spec(spec)
    check_columns(real_train, real_test, synthetic, spec)
    columns = [spec.target.column, *spec.sensitive_columns, *image.pixel_columns]
    real_train, real_test = real_train.select(columns), real_test.select(columns)
    synthetic, missing_target = rows_with_target(synthetic.select(columns), spec)
    if synthetic.height <= NEIGHBOURS:
        raise ValueError(
            f"the synthetic data has {synthetic.height} images with a label; "
            f"evaluation needs more than {NEIGHBOURS}"
        )
    result = EvaluationResult()
    timings: dict[str, float] = {}
    record_data(result, real_train, synthetic, missing_target, spec)
    with timed(timings, "utility"):
        utility = image_tstr_trtr(real_train, real_test, synthetic, spec, seed, families)
        record_utility(result, utility)
        _record_flips(result, utility)
    with timed(timings, "embedding"):
        train_emb, synth_emb, test_emb = _embed(image, seed, real_train, synthetic, real_test)
    with timed(timings, "fidelity"):
        summary_spec = image_summary_spec(spec)
        record_fidelity(
            result,
            image_summary(real_train, spec),
            image_summary(synthetic, spec),
            train_emb,
            synth_emb,
            summary_spec,
            seed,
            max_rows,
        )
    with timed(timings, "privacy"):
        record_copies(result, real_train, real_test, synthetic)
        record_distances(result, train_emb, synth_emb, test_emb, seed, max_rows)
    result.tables["timings_s"] = timings
    result.tables["sampling"] = {"max_rows": max_rows, "seed": seed}
    result.tables["embedding"] = {"kind": "pca", "components": train_emb.shape[1]}
    return result


def _image_spec(spec: DatasetSpec) -> ImageSpec:
    if spec.image is None:
        raise ValueError(f"the spec of '{spec.name}' has no image section; it is not images")
    return spec.image


def frame_images(frame: pl.DataFrame, image: ImageSpec) -> np.ndarray:
    """The pixel columns of ``frame`` as (n, C, H, W) float32 values scaled to [0, 1]."""
    values = frame.select(image.pixel_columns).to_numpy().astype(np.float32)
    scaled = (values - image.min_value) / (image.max_value - image.min_value)
    return np.clip(scaled, 0.0, 1.0).reshape(frame.height, *image.shape)


# ---------------------------------------------------------------- utility and fairness


def image_tstr_trtr(
    real_train: pl.DataFrame,
    real_test: pl.DataFrame,
    synthetic: pl.DataFrame,
    spec: DatasetSpec,
    seed: int,
    families: Sequence[ImageFamily] = IMAGE_FAMILIES,
) -> dict[str, dict[str, Any]]:
    """Per family: ``trtr``, ``tstr``, ``tsts`` and ``auroc_ratio_to_trtr``, shaped like the
    tabular :func:`~fairdistill.models.evaluation.utility.tstr_trtr`; TRTR and TSTR also hold
    ``flips``, per attribute the flipped accuracy and flip rate (when they apply)."""
    classifiers = ImageClassifiers(
        spec, _image_spec(spec), flipped_test_images(real_train, real_test, spec)
    )
    return protocol_results(real_train, real_test, synthetic, spec, seed, families, classifiers)


@dataclass(frozen=True)
class FrameImageClassifier:
    """An :class:`ImageClassifier` that reads the images from a frame's pixel columns."""

    classifier: ImageClassifier
    image: ImageSpec

    def positive_probability(self, frame: pl.DataFrame) -> np.ndarray:
        return self.classifier.positive_probability(frame_images(frame, self.image))


@dataclass(frozen=True)
class ImageClassifiers:
    """The protocols' classifiers for images, with the tint flips of the real test images."""

    spec: DatasetSpec
    image: ImageSpec
    flipped: dict[str, np.ndarray]  # per attribute, as :func:`flipped_test_images`

    def split_synthetic(
        self, synthetic: pl.DataFrame, seed: int
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A seeded split of the synthetic images, stratified by label when both are present."""
        labels = positive_labels(synthetic, self.spec)
        rng = np.random.default_rng(seed)
        is_test = np.zeros(synthetic.height, dtype=bool)
        for value in np.unique(labels):
            members = np.flatnonzero(labels == value)
            rng.shuffle(members)
            is_test[members[: round(members.size * TSTS_TEST_SHARE)]] = True
        mask = pl.Series(is_test)
        return synthetic.filter(~mask), synthetic.filter(mask)

    def fit(
        self, family: str, train: pl.DataFrame, test: pl.DataFrame, seed: int
    ) -> FrameImageClassifier:
        train_labels = positive_labels(train, self.spec)
        if np.unique(train_labels).size < 2:
            raise NoClassifierError("the training images hold a single label class")
        if test.height == 0:
            raise NoClassifierError("there are no test images")
        images = frame_images(train, self.image)
        classifier = train_image_classifier(cast(ImageFamily, family), images, train_labels, seed)
        return FrameImageClassifier(classifier, self.image)

    def extra_scores(
        self,
        protocol: str,
        model: FrameImageClassifier,
        labels: np.ndarray,
        predictions: np.ndarray,
    ) -> dict[str, Any]:
        # The flips re-tint real test images, so they only apply where those are the test.
        flipped = self.flipped if protocol in FLIP_PROTOCOLS else {}
        return {
            "flips": {
                attribute: _flip_scores(model.classifier, images, labels, predictions)
                for attribute, images in flipped.items()
            }
        }

    def untrained_extras(self) -> dict[str, Any]:
        return {"flips": {}}


def _flip_scores(
    model: ImageClassifier, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> dict[str, float]:
    flipped = (model.positive_probability(images) >= DECISION_THRESHOLD).astype(np.int8)
    return {
        "flipped_accuracy": float((flipped == labels).mean()),
        "flip_rate": float((flipped != predictions).mean()),
    }


def _record_flips(result: EvaluationResult, utility: dict[str, dict[str, Any]]) -> None:
    for family, protocols in utility.items():
        for protocol in FLIP_PROTOCOLS:
            for attribute, scores in protocols[protocol]["flips"].items():
                for name, value in scores.items():
                    result.metrics[metric_name(protocol, family, attribute, name)] = value


# ---------------------------------------------------------------- flipping the tint


def colour_profiles(images: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Per group: each channel's share of all the ink in the group's images (sums to 1)."""
    profiles = {}
    for group in np.unique(groups):
        ink = images[groups == group].sum(axis=(0, 2, 3)).astype(np.float64)
        total = ink.sum()
        profiles[str(group)] = ink / total if total > 0 else np.full(ink.size, 1.0 / ink.size)
    return profiles


def retint(images: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Each image's grey intensity (the sum of its channels) times ``profile``, in [0, 1]."""
    intensity = images.sum(axis=1, keepdims=True)
    return np.clip(intensity * profile[None, :, None, None], 0.0, 1.0).astype(np.float32)


def flipped_test_images(
    real_train: pl.DataFrame, real_test: pl.DataFrame, spec: DatasetSpec
) -> dict[str, np.ndarray]:
    """Per sensitive attribute with two values in the training images: the test images
    re-tinted with the other value's colour profile. Empty for single-channel images."""
    image = _image_spec(spec)
    if image.channels < 2:
        return {}
    train_images, test_images = frame_images(real_train, image), frame_images(real_test, image)
    flipped = {}
    for attribute in spec.sensitive_columns:
        train_values = real_train.get_column(attribute).cast(pl.String).to_numpy()
        values = np.unique(train_values)
        if values.size != 2:
            continue
        profiles = colour_profiles(train_images, train_values)
        test_values = real_test.get_column(attribute).cast(pl.String).to_numpy()
        result = test_images.copy()
        for value, other in ((values[0], values[1]), (values[1], values[0])):
            members = test_values == value
            result[members] = retint(test_images[members], profiles[str(other)])
        flipped[attribute] = result
    return flipped


# ---------------------------------------------------------------- fidelity


def _embed(
    image: ImageSpec, seed: int, fit_on: pl.DataFrame, *others: pl.DataFrame
) -> list[np.ndarray]:
    """``fit_on`` and ``others`` in the principal components of ``fit_on``'s pixels."""
    flat = frame_images(fit_on, image).reshape(fit_on.height, -1)
    components = min(EMBEDDING_COMPONENTS, flat.shape[0], flat.shape[1])
    pca = PCA(n_components=components, svd_solver="full", random_state=seed).fit(flat)
    frames = (fit_on, *others)
    return [
        pca.transform(frame_images(frame, image).reshape(frame.height, -1)).astype(np.float32)
        for frame in frames
    ]


def summary_columns(image: ImageSpec) -> list[str]:
    return [*(f"channel_{channel}_mean" for channel in range(image.channels)), "ink_share"]


def image_summary(frame: pl.DataFrame, spec: DatasetSpec) -> pl.DataFrame:
    """Label, sensitive attributes and a few numbers per image (see the module notes)."""
    image = _image_spec(spec)
    images = frame_images(frame, image)
    means = images.mean(axis=(2, 3))
    ink = (images.max(axis=1) > INK_THRESHOLD).mean(axis=(1, 2))
    names = summary_columns(image)
    values = {name: means[:, channel] for channel, name in enumerate(names[:-1])}
    values[names[-1]] = ink
    summary = pl.DataFrame({name: column.astype(np.float64) for name, column in values.items()})
    return frame.select(spec.target.column, *spec.sensitive_columns).hstack(summary)


def image_summary_spec(spec: DatasetSpec) -> DatasetSpec:
    """A tabular spec of :func:`image_summary` frames: every summary number in [0, 1]."""
    number = ColumnSpec(type="continuous", nullable=False, min=0.0, max=1.0)
    columns = {name: number for name in summary_columns(_image_spec(spec))}
    return DatasetSpec(
        name=spec.name, target=spec.target, sensitive=spec.sensitive, columns=columns
    )
