"""Evaluation stays bounded on large outputs: its time at 1x and 10x Adult's synthetic size,
and the sampling error of the nearest-neighbour fidelity metrics.

The synthetic stand-in is Adult's training split resampled with numeric jitter
(:func:`benchmarks.scale.scaled_table`), so the cost is the evaluator's alone.

1. ``evaluate_synthetic`` on ``--rows`` and ten times as many synthetic rows: total wall and
   CPU time, and the evaluator's own per-part timings (``tables["timings_s"]``).
2. alpha-precision, beta-recall, density and coverage at ``max_rows`` 5,000 and 20,000 on
   the same embedded data, over several subsampling seeds: mean, spread (standard
   deviation) and range, i.e. the error the subsampling adds.

Documented configuration::

    .venv/bin/python -m benchmarks.evaluation_bound --rows 36000 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.scale import scaled_table
from benchmarks.speed_common import DEFAULT_OUTPUT_DIR, adult_split, load_average, machine
from benchmarks.speed_common import write_json as write_report
from fairdistill.models.evaluation import evaluate_synthetic
from fairdistill.models.evaluation.embedding import fit_embedding
from fairdistill.models.evaluation.fidelity import sample_fidelity

SAMPLE_SIZES = (5000, 20_000)
FIDELITY_KEYS = ("alpha_precision", "beta_recall", "density", "coverage")


def timed_evaluation(rows: int, families: tuple[str, ...]) -> dict[str, Any]:
    split = adult_split()
    synthetic, _ = scaled_table(rows, seed=1)
    load_before = load_average()
    wall, cpu = time.perf_counter(), time.process_time()
    result = evaluate_synthetic(
        split.train, split.test, synthetic, split.spec, seed=0, families=families
    )
    return {
        "synthetic_rows": rows,
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "parts_wall_s": {k: round(v, 3) for k, v in result.tables["timings_s"].items()},
        "load_before": load_before,
        "load_after": load_average(),
    }


def sampling_spread(rows: int, seeds: int) -> dict[str, Any]:
    split = adult_split()
    synthetic, _ = scaled_table(rows, seed=1)
    embedding = fit_embedding(split.train, split.spec, include_target=True)
    real_emb, synth_emb = embedding.transform(split.train), embedding.transform(synthetic)
    spread: dict[str, Any] = {}
    for max_rows in SAMPLE_SIZES:
        values: dict[str, list[float]] = {key: [] for key in FIDELITY_KEYS}
        started = time.perf_counter()
        for seed in range(seeds):
            figures, _ = sample_fidelity(real_emb, synth_emb, seed, max_rows=max_rows)
            for key in FIDELITY_KEYS:
                values[key].append(float(figures[key]))
        spread[str(max_rows)] = {
            "seconds_per_seed": round((time.perf_counter() - started) / seeds, 3),
            **{
                key: {
                    "mean": round(statistics.fmean(found), 4),
                    "std": round(statistics.stdev(found), 4) if len(found) > 1 else 0.0,
                    "range": round(max(found) - min(found), 4),
                }
                for key, found in values.items()
            },
        }
    return spread


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=36_000)
    parser.add_argument("--scale", type=int, default=10, help="the larger run has rows x scale")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--families",
        nargs="+",
        default=["gradient_boosting", "logistic_regression"],
        help="classifier families of the utility part",
    )
    parser.add_argument("--skip-timing", action="store_true", help="only the sampling spread")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR / "evaluation.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    families = tuple(arguments.families)
    report: dict[str, Any] = {"machine": machine()}
    report["sampling_spread"] = sampling_spread(arguments.rows, arguments.seeds)
    print(json.dumps(report["sampling_spread"], indent=2), flush=True)
    if not arguments.skip_timing:
        report["timing"] = [
            timed_evaluation(rows, families)
            for rows in (arguments.rows, arguments.rows * arguments.scale)
        ]
        print(json.dumps(report["timing"], indent=2))
    report["machine"]["load_average_end"] = load_average()
    write_report(arguments.output, report)
    return report


if __name__ == "__main__":
    main()
