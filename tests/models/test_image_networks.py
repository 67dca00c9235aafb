"""The convolutional pair: the encoder/decoder interface, stored, rebuilt, trained as a teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fairdistill.models.architectures import module_from_state
from fairdistill.models.blocks import EncodedTable, FeatureBlock
from fairdistill.models.codec import TabularCodec
from fairdistill.models.image_codec import ImageCodec
from fairdistill.models.image_networks import ConvEncoder, ImageDecoder, downsampled_size
from fairdistill.models.modality import build_teacher
from fairdistill.models.networks import (
    LatentDecoder,
    LatentEncoder,
    MLPEncoder,
    TabularDecoder,
    parameter_count,
)
from fairdistill.models.spec import ImageSpec
from fairdistill.models.student import StudentConfig, build_student, distill_student
from fairdistill.models.teacher import FairVAE, TeacherConfig, train_teacher

SHAPE = (3, 8, 8)


def image_codec(shape: tuple[int, int, int] = SHAPE) -> ImageCodec:
    channels, height, width = shape
    attributes = TabularCodec(
        columns_out=["label", "colour"],
        target_column="label",
        label_levels=("low", "high"),
        sensitive_columns=["colour"],
        sensitive_levels=[("green", "red")],
        columns=[],
    )
    image = ImageSpec(channels=channels, height=height, width=width)
    return ImageCodec(
        columns_out=["label", "colour", *image.pixel_columns], attributes=attributes, image=image
    )


def striped_images(n: int, seed: int = 0) -> EncodedTable:
    """Label 1: a vertical bar, label 0: a horizontal bar, at a random place; colour 0/1
    tints the red or the green channel; the colour follows the label 80 % of the time."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    colour = np.where(rng.random(n) < 0.8, label, 1 - label)
    images = np.zeros((n, *SHAPE), dtype=np.float32)
    place = rng.integers(1, 7, n)
    for row in range(n):
        channel = 0 if colour[row] else 1
        if label[row]:
            images[row, channel, :, place[row]] = 1.0
        else:
            images[row, channel, place[row], :] = 1.0
        images[row, 2] = 0.2 * images[row, channel]
    return EncodedTable(images.reshape(n, -1), colour[:, None].astype(np.int64), label)


@pytest.mark.parametrize("shape", [SHAPE, (1, 7, 5), (2, 28, 28)])
def test_pair_maps_flat_images_to_latents_and_back(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder(shape, 4, (8, 16), 5)
    decoder = ImageDecoder(5, 2, shape, (8, 16))
    assert isinstance(encoder, LatentEncoder) and isinstance(decoder, LatentDecoder)
    pixels = int(np.prod(shape))
    assert encoder.in_dim == decoder.output_dim == pixels
    x, condition = torch.rand(6, pixels), torch.rand(6, 4)
    mu, logvar = encoder(x, condition)
    assert mu.shape == logvar.shape == (6, 5)
    output = decoder(mu, condition[:, :2])
    assert output["params"].shape == (6, pixels)


def test_downsampling_keeps_the_first_resolution_then_halves() -> None:
    assert [downsampled_size(8, stages) for stages in (1, 2, 3)] == [8, 4, 2]
    assert downsampled_size(7, 2) == 4


@torch.no_grad()
def test_bernoulli_loss_divergence_and_sample() -> None:
    torch.manual_seed(1)
    decoder = ImageDecoder(4, 2, SHAPE, (8, 16))
    z, s = torch.randn(5, 4), torch.eye(2)[torch.tensor([0, 1, 0, 1, 1])]
    output = decoder(z, s)
    x = torch.rand(5, 192)
    expected = F.binary_cross_entropy(torch.sigmoid(output["params"]), x, reduction="sum") / 5
    loss = decoder.reconstruction_loss(output, x)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-3)
    assert float(decoder.divergence(output, output)) == pytest.approx(0.0, abs=1e-6)
    other = decoder(z + 1.0, s)
    assert float(decoder.divergence(output, other)) > 0.0
    generator = torch.Generator().manual_seed(0)
    drawn = decoder.sample(output, generator)
    # Grey levels are the Bernoulli mean: never binarised, with or without noise.
    torch.testing.assert_close(drawn, torch.sigmoid(output["params"]))
    torch.testing.assert_close(decoder.sample(output, generator, noise=False), drawn)


@torch.no_grad()
def test_gaussian_likelihood_draws_clipped_noise() -> None:
    torch.manual_seed(2)
    decoder = ImageDecoder(4, 2, SHAPE, (8, 16), likelihood="gaussian")
    output = decoder(torch.randn(50, 4), torch.eye(2)[torch.zeros(50, dtype=torch.long)])
    assert set(output) == {"params", "logvar"} and output["logvar"].shape == (50, 192)
    x = torch.rand(50, 192)
    manual = 0.5 * (output["logvar"] + (x - output["params"]) ** 2 * torch.exp(-output["logvar"]))
    torch.testing.assert_close(decoder.reconstruction_loss(output, x), manual.sum(1).mean())
    first = decoder.sample(output, torch.Generator().manual_seed(3))
    again = decoder.sample(output, torch.Generator().manual_seed(3))
    mean = decoder.sample(output, torch.Generator().manual_seed(3), noise=False)
    torch.testing.assert_close(first, again)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert not torch.equal(first, mean)
    with pytest.raises(ValueError, match="likelihood"):
        ImageDecoder(4, 2, SHAPE, (8,), likelihood="poisson")  # type: ignore[arg-type]


def test_pair_is_stored_as_architecture_and_rebuilt_exactly() -> None:
    torch.manual_seed(3)
    teacher = build_teacher(image_codec(), [2], TeacherConfig(latent_dim=6))
    rebuilt = module_from_state(teacher.architecture(), teacher.state_dict())
    assert isinstance(rebuilt, FairVAE)
    assert isinstance(rebuilt.encoder, ConvEncoder) and isinstance(rebuilt.decoder, ImageDecoder)
    x, condition = torch.rand(4, 192), torch.rand(4, 4)
    torch.testing.assert_close(rebuilt.encoder(x, condition), teacher.eval().encoder(x, condition))
    mu, _ = teacher.encoder(x, condition)
    torch.testing.assert_close(
        rebuilt.decoder(mu, condition[:, 2:])["params"],
        teacher.decoder(mu, condition[:, 2:])["params"],
    )


def test_build_teacher_picks_the_pair_of_the_codec(adult_sample) -> None:
    from fairdistill.data import bundled_dataset
    from fairdistill.models.spec import complete_spec, load_spec

    spec = complete_spec(load_spec(bundled_dataset("adult").spec_path), adult_sample)
    tabular = TabularCodec.fit(adult_sample, spec)
    table_teacher = build_teacher(tabular, tabular.sensitive_level_counts, TeacherConfig())
    assert isinstance(table_teacher.encoder, MLPEncoder)
    assert isinstance(table_teacher.decoder, TabularDecoder)
    odds = TeacherConfig(criterion="equalized_odds", latent_dim=7)
    image_teacher = build_teacher(image_codec(), [2], odds)
    assert isinstance(image_teacher.encoder, ConvEncoder)
    # Under equalized odds the label head reads z and s, as for tables.
    assert image_teacher.label_head.in_dim == 7 + 2


def test_default_student_of_an_image_teacher_is_a_small_mlp() -> None:
    teacher = build_teacher(image_codec(), [2], TeacherConfig())
    student = build_student(teacher, StudentConfig())
    assert isinstance(student, MLPEncoder) and student.in_dim == 192
    assert parameter_count(student) <= 0.25 * parameter_count(teacher.encoder)


def test_image_teacher_trains_through_the_shared_loop_and_distills() -> None:
    table = striped_images(256)
    codec = image_codec()
    config = TeacherConfig(
        latent_dim=6, epochs=8, batch_size=64, learning_rate=5e-3, criterion="equalized_odds"
    )
    blocks: list[FeatureBlock] = codec.blocks
    teacher, history = train_teacher(
        table, blocks, [2], config, seed=0, build=lambda: build_teacher(codec, [2], config)
    )
    assert isinstance(teacher.encoder, ConvEncoder)
    assert history[-1]["reconstruction"] < 0.5 * history[0]["reconstruction"]
    again, _ = train_teacher(
        table, blocks, [2], config, seed=0, build=lambda: build_teacher(codec, [2], config)
    )
    for name, tensor in teacher.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, msg=name)
    student_config = StudentConfig(epochs=4, batch_size=64, learning_rate=1e-2)
    _, student_history = distill_student(teacher, table, blocks, [2], student_config, seed=0)
    assert student_history[-1]["loss"] < student_history[0]["loss"]
