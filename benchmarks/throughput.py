"""Generation throughput: a million rows from latents to a parquet file.

A teacher is trained briefly on Adult (the cost of decoding does not depend on how well it
was trained), a Gaussian-mixture prior is fitted on its latent means, and then the timed
path runs: prior sample, sensitive draw, ``decode_latents``, ``codec.decode``, and the
pipeline's parquet writer (``write_parquet``: zstd bytes, sha256, fsync'd atomic rename).

Quick configuration (``make bench``)::

    .venv/bin/python -m benchmarks.throughput --rows 1000000

``--profile`` adds a cProfile listing of the timed path (top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.speed_common import (
    DEFAULT_OUTPUT_DIR,
    Clock,
    adult_split,
    machine,
    peak_rss_bytes,
    write_json,
)
from fairdistill.models import stages
from fairdistill.models.codec import TabularCodec
from fairdistill.models.config import GenerateConfig
from fairdistill.models.generation import decode_latents, sample_sensitive
from fairdistill.models.modality import fit_codec
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.teacher import FairVAE, TeacherConfig
from fairdistill.tasks.services.storage import write_parquet

TARGET_SECONDS = 5.0
SEED = 0


def fitted_generator(
    epochs: int, device: str
) -> tuple[TabularCodec, FairVAE, GaussianMixturePrior, Any]:
    split = adult_split(SEED)
    codec = fit_codec(split.train, split.spec)
    assert isinstance(codec, TabularCodec)
    table = codec.encode(split.train)
    teacher = stages.fit_teacher(
        codec, table, TeacherConfig(epochs=epochs), seed=SEED, device=device
    ).model
    prior = stages.fit_latent_prior(teacher.encoder, table, codec, GenerateConfig(), seed=SEED)
    return codec, teacher, prior.prior, table.sensitive


def generate_rows(
    clock: Clock,
    codec: TabularCodec,
    teacher: FairVAE,
    prior: GaussianMixturePrior,
    real_sensitive: Any,
    rows: int,
    folder: Path,
) -> int:
    """The timed path; returns the parquet file's size in bytes."""
    with clock.section("prior_sample"):
        z = prior.sample(rows, seed=SEED)
        sensitive = sample_sensitive(rows, real_sensitive, seed=SEED)
    with clock.section("decode_latents"):
        features, label = decode_latents(
            teacher.decoder,
            teacher.label_head,
            z,
            sensitive,
            codec.sensitive_level_counts,
            seed=SEED,
            criterion=teacher.criterion,
        )
    with clock.section("codec_decode"):
        frame = codec.decode(features, sensitive, label)
    with clock.section("parquet_write"):
        reference = write_parquet(str(folder / "synthetic.parquet"), frame)
    return reference.path.stat().st_size


def profile_listing(profiler: cProfile.Profile, lines: int = 25) -> str:
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(lines)
    return stream.getvalue()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2, help="teacher epochs before timing")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR / "throughput.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    codec, teacher, prior, real_sensitive = fitted_generator(arguments.epochs, arguments.device)
    clock = Clock()
    profiler = cProfile.Profile() if arguments.profile else None
    with tempfile.TemporaryDirectory(prefix="fairdistill-throughput-") as folder:
        if profiler is not None:
            profiler.enable()
        size = generate_rows(
            clock, codec, teacher, prior, real_sensitive, arguments.rows, Path(folder)
        )
        if profiler is not None:
            profiler.disable()
    report: dict[str, Any] = {
        "machine": machine(),
        "rows": arguments.rows,
        "torch_threads": arguments.threads,
        "sections": clock.sections,
        "total_wall_s": clock.total("wall_s"),
        "total_cpu_s": clock.total("cpu_s"),
        "rows_per_second": round(arguments.rows / max(clock.total("wall_s"), 1e-9)),
        "parquet_bytes": size,
        "peak_rss_mib": round(peak_rss_bytes() / 2**20, 1),
        "target_wall_s": TARGET_SECONDS * arguments.rows / 1_000_000,
    }
    if profiler is not None:
        report["profile"] = profile_listing(profiler)
        print(report["profile"])
    write_json(arguments.output, report)
    print(json.dumps({key: value for key, value in report.items() if key != "profile"}, indent=2))
    return report


if __name__ == "__main__":
    main()
