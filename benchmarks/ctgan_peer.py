"""A peer on the same footing: the ``ctgan`` package's CTGAN against fairdistill on Adult.

Both models train on the same stratified Adult split (seed 0) and both outputs go through
the same ``evaluate_synthetic`` call. CTGAN runs at its package defaults except the number
of epochs, which can be lowered on a slow machine: its training time at the default 300
epochs is then extrapolated from the measured seconds per epoch (the one-off fitting of its
data transformer is timed apart and not multiplied). fairdistill runs its default models
(teacher, student, prior) in the same process, so both timings see the same machine load.

Needs the optional extra: ``pip install -c constraints.txt 'fairdistill[bench]'``.

Documented configuration::

    .venv/bin/python -m benchmarks.ctgan_peer --ctgan-epochs 30
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from benchmarks.speed_common import DEFAULT_OUTPUT_DIR, Clock, adult_split, machine, write_json
from fairdistill.models import stages
from fairdistill.models.config import RunConfig
from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.modality import fit_codec
from fairdistill.models.spec import DatasetSpec

CTGAN_DEFAULT_EPOCHS = 300
SEED = 0
# TabFairGAN's reported training time for its 200 epochs on Adult on a 2-core machine.
TABFAIRGAN_SECONDS = 447.0
HEADLINE_PATTERNS = (
    ".auroc",
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "label_parity.",
    "fidelity.alpha_precision",
    "fidelity.beta_recall",
    "fidelity.coverage",
    "fidelity.mean_tvd",
    "fidelity.mean_wasserstein",
    "fidelity.correlation_difference",
    "privacy.exact_copy_rate",
    "privacy.dcr.median",
)


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """The utility, fairness, fidelity and privacy numbers compared (real-only ones too)."""
    return {
        key: round(value, 4)
        for key, value in sorted(metrics.items())
        if any(pattern in key for pattern in HEADLINE_PATTERNS)
    }


def fairdistill_synthetic(train: pl.DataFrame, spec: DatasetSpec, clock: Clock) -> pl.DataFrame:
    """fairdistill's product rows with the run defaults, through the stages' own functions."""
    config = RunConfig(dataset="adult")
    codec = fit_codec(train, spec)
    table = codec.encode(train)
    with clock.section("fairdistill_fit"):
        teacher = stages.fit_teacher(codec, table, config.teacher, seed=SEED).model
        student = stages.fit_student(teacher, codec, table, config.student, seed=SEED).encoder
        prior = stages.fit_latent_prior(student, table, codec, config.generate, seed=SEED).prior
    with clock.section("fairdistill_sample"):
        encoded = stages.sample_rows(
            teacher, prior, table.sensitive, codec, config.generate, len(table), seed=SEED
        )
        return codec.decode(encoded.features, encoded.sensitive, encoded.label)


def ctgan_synthetic(
    train: pl.DataFrame, spec: DatasetSpec, epochs: int, clock: Clock
) -> pl.DataFrame:
    from ctgan import CTGAN
    from ctgan.data_transformer import DataTransformer

    discrete = [
        name
        for name in train.columns
        if name == spec.target.column
        or name in spec.sensitive_columns
        or spec.column(name).type == "categorical"
    ]
    # CTGAN's transformer wants no nulls in discrete columns: a null becomes its own level.
    frame = train.with_columns(pl.col(discrete).cast(pl.String).fill_null("<null>")).to_pandas()
    with clock.section("ctgan_transformer_fit"):
        DataTransformer().fit(frame, discrete)
    model = CTGAN(epochs=epochs)
    model.set_random_state(SEED)
    with clock.section("ctgan_fit"):
        model.fit(frame, discrete_columns=discrete)
    with clock.section("ctgan_sample"):
        sampled = pl.from_pandas(model.sample(train.height))
    restored = sampled.with_columns(
        pl.when(pl.col(name) == "<null>").then(None).otherwise(pl.col(name)).alias(name)
        for name in discrete
    )
    return restored.cast(dict(train.schema), strict=False)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctgan-epochs", type=int, default=CTGAN_DEFAULT_EPOCHS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-rows", type=int, help="train rows (default: all)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR / "ctgan_peer.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    split = adult_split(SEED)
    train = split.train if arguments.max_rows is None else split.train.head(arguments.max_rows)
    clock = Clock()
    ours = fairdistill_synthetic(train, split.spec, clock)
    peer = ctgan_synthetic(train, split.spec, arguments.ctgan_epochs, clock)
    metrics = {}
    for name, synthetic in (("fairdistill", ours), ("ctgan", peer)):
        with clock.section(f"evaluate_{name}"):
            result = evaluate_synthetic(train, split.test, synthetic, split.spec, seed=SEED)
        metrics[name] = headline(result.metrics)
    sections = clock.sections
    transformer = sections["ctgan_transformer_fit"]["wall_s"]
    per_epoch = (sections["ctgan_fit"]["wall_s"] - transformer) / arguments.ctgan_epochs
    extrapolated = transformer + per_epoch * CTGAN_DEFAULT_EPOCHS
    ours_fit = sections["fairdistill_fit"]["wall_s"]
    report = {
        "machine": machine(),
        "train_rows": train.height,
        "ctgan_epochs": arguments.ctgan_epochs,
        "sections": sections,
        "ctgan_seconds_per_epoch": round(per_epoch, 3),
        "ctgan_fit_s_at_default_epochs": round(extrapolated, 1),
        "fairdistill_fit_s": ours_fit,
        "speedup_vs_ctgan_default": round(extrapolated / ours_fit, 1),
        "speedup_vs_tabfairgan_447s": round(TABFAIRGAN_SECONDS / ours_fit, 1),
        "metrics": metrics,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(arguments.output, report)
    print(json.dumps({key: value for key, value in report.items() if key != "machine"}, indent=2))
    return report


if __name__ == "__main__":
    main()
