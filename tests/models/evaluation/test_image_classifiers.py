"""The image evaluation's classifiers: they learn from pixels, depend on the seed alone and
refuse what they cannot train on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairdistill.models.evaluation.image_classifiers import (
    IMAGE_FAMILIES,
    SmallCNN,
    train_image_classifier,
)

SHAPE = (2, 5, 5)


def bright_or_dark(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label 1: the first channel is lit; label 0: the second one is."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = 0.2 * rng.random((n, *SHAPE)).astype(np.float32)
    images[labels == 1, 0] += 0.7
    images[labels == 0, 1] += 0.7
    return images, labels


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_each_family_learns_a_channel_that_gives_the_label(family: str) -> None:
    images, labels = bright_or_dark(64, seed=0)
    test_images, test_labels = bright_or_dark(60, seed=1)
    model = train_image_classifier(family, images, labels, seed=0)
    probability = model.positive_probability(test_images)
    assert probability.shape == (60,)
    assert ((probability >= 0.5) == test_labels).mean() == 1.0


def test_the_cnn_depends_on_the_seed_alone_and_leaves_the_global_state() -> None:
    images, labels = bright_or_dark(64, seed=2)
    torch.manual_seed(9)
    expected = torch.rand(2)
    torch.manual_seed(9)
    first = train_image_classifier("cnn", images, labels, seed=4).positive_probability(images)
    assert torch.equal(torch.rand(2), expected)
    again = train_image_classifier("cnn", images, labels, seed=4).positive_probability(images)
    other = train_image_classifier("cnn", images, labels, seed=5).positive_probability(images)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_no_images_get_no_probabilities() -> None:
    images, labels = bright_or_dark(32, seed=3)
    model = train_image_classifier("cnn", images, labels, seed=0)
    assert model.positive_probability(np.zeros((0, *SHAPE), dtype=np.float32)).shape == (0,)


def test_odd_sides_keep_the_dense_layer_in_step_with_the_maps() -> None:
    # 5x5 maps halve to 3x3 (rounded up) in the strided convolution.
    logits = SmallCNN(SHAPE)(torch.zeros(4, *SHAPE))
    assert logits.shape == (4,)


def test_one_label_class_or_an_unknown_family_is_refused() -> None:
    images, labels = bright_or_dark(16, seed=0)
    with pytest.raises(ValueError, match="both label classes"):
        train_image_classifier("cnn", images, np.ones(16, dtype=np.int64), seed=0)
    with pytest.raises(ValueError, match="unknown image classifier family"):
        train_image_classifier("forest", images, labels, seed=0)  # type: ignore[arg-type]
