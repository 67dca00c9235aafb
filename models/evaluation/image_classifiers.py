"""Classifiers of an image's label that the image evaluation trains on real or synthetic images.

Two families, both fast on two CPU cores for images of a few hundred pixels:

- ``cnn``: a small convolutional network (two 3x3 convolutions, the second halving the
  resolution, a 32-unit hidden layer, one logit), trained with Adam on the binary
  cross-entropy; its weights, batch order and results depend on the seed alone on CPU;
- ``logistic_regression``: L2 logistic regression on the flattened pixels.

Both see the pixels only, so a classifier can use the sensitive attribute only as far as the
images show it (a tint, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

ImageFamily = Literal["cnn", "logistic_regression"]
IMAGE_FAMILIES: tuple[ImageFamily, ...] = ("cnn", "logistic_regression")
CNN_EPOCHS = 25
CNN_BATCH_SIZE = 64
CNN_LEARNING_RATE = 3e-3
CNN_WEIGHT_DECAY = 1e-4
CNN_HIDDEN = 32
_PREDICT_BATCH = 4096


class SmallCNN(nn.Module):
    """Two convolutions, a hidden dense layer and the logit of the positive label."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = shape
        self.shape = shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(32 * ((height + 1) // 2) * ((width + 1) // 2), CNN_HIDDEN),
            nn.SiLU(),
        )
        self.logit = nn.Linear(CNN_HIDDEN, 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.logit(self.features(images)).squeeze(1)


@dataclass(frozen=True)
class ImageClassifier:
    """A fitted classifier of the positive label from (n, C, H, W) images in [0, 1]."""

    family: ImageFamily
    model: Any

    def positive_probability(self, images: np.ndarray) -> np.ndarray:
        if self.family == "logistic_regression":
            return self.model.predict_proba(images.reshape(len(images), -1))[:, 1]
        return _cnn_probability(self.model, images)


def train_image_classifier(
    family: ImageFamily, images: np.ndarray, labels: np.ndarray, seed: int
) -> ImageClassifier:
    """Fit one family on images (n, C, H, W) and 0/1 labels; both classes must be present."""
    if np.unique(labels).size < 2:
        raise ValueError("an image classifier needs both label classes to train")
    if family == "logistic_regression":
        model: Any = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(images.reshape(len(images), -1), labels)
    elif family == "cnn":
        model = _train_cnn(images, labels, seed)
    else:
        raise ValueError(f"unknown image classifier family '{family}' (known: {IMAGE_FAMILIES})")
    return ImageClassifier(family=family, model=model)


def _train_cnn(images: np.ndarray, labels: np.ndarray, seed: int) -> SmallCNN:
    shape = tuple(int(side) for side in images.shape[1:])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(shape)  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=CNN_LEARNING_RATE, weight_decay=CNN_WEIGHT_DECAY
    )
    x = torch.as_tensor(images, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(CNN_EPOCHS):
        for rows in torch.randperm(len(x), generator=order).split(CNN_BATCH_SIZE):
            loss = F.binary_cross_entropy_with_logits(model(x[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def _cnn_probability(model: SmallCNN, images: np.ndarray) -> np.ndarray:
    parts = [
        torch.sigmoid(model(torch.as_tensor(images[start : start + _PREDICT_BATCH]).float()))
        for start in range(0, len(images), _PREDICT_BATCH)
    ]
    if not parts:
        return np.zeros(0)
    return torch.cat(parts).numpy().astype(np.float64)
