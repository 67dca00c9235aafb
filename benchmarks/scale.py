"""Scale: time per epoch and peak memory at 10k, 100k and 1M rows of Adult's schema.

Tables are drawn from Adult's training split with replacement, with Gaussian noise on the
numeric columns (5 % of each column's standard deviation, integers rounded), so they keep
Adult's schema, levels and rough joint distribution at any size.

Each (size, phase) runs in a fresh subprocess, so the peak resident memory it reports
(``ru_maxrss`` of that process) belongs to that phase alone. Phases:

- ``teacher``: encode the table and train the teacher for one epoch;
- ``student``: a teacher trained for one epoch on 10k rows, then one distillation epoch on
  the whole table;
- ``generate``: a teacher trained for one epoch on 10k rows, then as many rows as the
  table generated and decoded (prior sample, ``decode_latents``, ``codec.decode``),
  holding only the table's sensitive column meanwhile, as the generate stage does.

Quick configuration (``make bench``)::

    .venv/bin/python -m benchmarks.scale --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.speed_common import (
    DEFAULT_OUTPUT_DIR,
    adult_split,
    load_average,
    machine,
    peak_rss_bytes,
    write_json,
)

PHASES = ("teacher", "student", "generate")
NOISE_SHARE = 0.05
SMALL_TEACHER_ROWS = 10_000
SEED = 0
GIB = 2**30


def scaled_table(rows: int, seed: int = SEED) -> tuple[pl.DataFrame, Any]:
    """``rows`` rows resampled from Adult's training split, numerics jittered."""
    split = adult_split(seed)
    rng = np.random.default_rng(seed)
    frame = split.train[rng.integers(0, split.train.height, size=rows)]
    jittered = []
    for name, dtype in frame.schema.items():
        if not dtype.is_numeric():
            continue
        values = frame.get_column(name).cast(pl.Float64).to_numpy()
        spread = float(np.nanstd(values)) * NOISE_SHARE
        noisy = values + rng.normal(0.0, spread, size=rows)
        if dtype.is_integer():
            noisy = np.clip(np.rint(noisy), np.nanmin(values), np.nanmax(values))
        jittered.append(pl.Series(name, noisy).cast(dtype))
    return frame.with_columns(jittered), split.spec


def run_phase(phase: str, rows: int, threads: int, device: str) -> dict[str, Any]:
    """One phase on a table of ``rows`` rows, in this process (called by the subprocess)."""
    import torch

    from fairdistill.models import stages
    from fairdistill.models.blocks import EncodedTable
    from fairdistill.models.config import GenerateConfig
    from fairdistill.models.modality import fit_codec
    from fairdistill.models.student import StudentConfig
    from fairdistill.models.teacher import TeacherConfig

    torch.set_num_threads(threads)
    frame, spec = scaled_table(rows)
    arrow_bytes = int(frame.to_arrow().nbytes)
    codec = fit_codec(frame, spec)
    config = TeacherConfig(epochs=1)
    started, cpu_started = time.perf_counter(), time.process_time()
    table = codec.encode(frame)
    encode_s = time.perf_counter() - started

    def teacher_on(subset: Any) -> Any:
        fitted = stages.fit_teacher(codec, subset, config, seed=SEED, device=device)
        return fitted.model, fitted.history

    result: dict[str, Any] = {"phase": phase, "rows": rows, "arrow_bytes": arrow_bytes}
    result["encode_s"] = round(encode_s, 3)
    if phase == "teacher":
        measured_cpu = time.process_time()
        _, history = teacher_on(table)
        result["epoch_s"] = round(history[0]["epoch_seconds"], 3)
    else:
        head = slice(0, min(SMALL_TEACHER_ROWS, rows))
        small = EncodedTable(table.features[head], table.sensitive[head], table.label[head])
        teacher, _ = teacher_on(small)
        measured_cpu = time.process_time()
        if phase == "student":
            fitted = stages.fit_student(
                teacher, codec, table, StudentConfig(epochs=1), seed=SEED, device=device
            )
            history = fitted.history
            result["epoch_s"] = round(history[0]["epoch_seconds"], 3)
        else:
            settings = GenerateConfig()
            prior = stages.fit_latent_prior(
                teacher.encoder, small, codec, settings, seed=SEED
            ).prior
            real_sensitive = table.sensitive
            # As the generate stage does: decoding keeps only the real sensitive column, not
            # the source frame or its encoded rows (``small`` is a view into them).
            del frame, table, small
            generated = time.perf_counter()
            encoded = stages.sample_rows(
                teacher, prior, real_sensitive, codec, settings, rows, seed=SEED
            )
            codec.decode(encoded.features, encoded.sensitive, encoded.label)
            result["generate_s"] = round(time.perf_counter() - generated, 3)
    # CPU seconds of the measured step (tensor set-up included): less inflated than wall
    # time when other jobs share the cores.
    result["measured_cpu_s"] = round(time.process_time() - measured_cpu, 3)
    result["process_cpu_s"] = round(time.process_time() - cpu_started, 3)
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def measure(phase: str, rows: int, threads: int, device: str) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.scale", "--child", phase,
        "--sizes", str(rows), "--threads", str(threads), "--device", device,
    ]  # fmt: skip
    load_before = load_average()
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{phase} at {rows} rows failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(time.perf_counter() - started, 3)
    result["load_before"] = load_before
    result["load_after"] = load_average()
    result["children_peak_rss_bytes"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    )
    budget = 3 * result["arrow_bytes"] + GIB
    result["memory_budget_bytes"] = budget
    result["memory_within_budget"] = result["peak_rss_bytes"] <= budget
    return result


def per_row_growth(results: list[dict[str, Any]], phase: str) -> dict[str, float]:
    """Seconds per row at each size, and its growth between consecutive sizes."""
    key = "generate_s" if phase == "generate" else "epoch_s"
    rows = sorted((r["rows"], r[key] / r["rows"]) for r in results if r["phase"] == phase)
    growth = {
        f"{small}->{large}": round(b / a, 3) for (small, a), (large, b) in itertools.pairwise(rows)
    }
    return {"seconds_per_million_rows": {str(n): round(v * 1e6, 3) for n, v in rows}, **growth}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR / "scale.json")
    parser.add_argument("--child", choices=PHASES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    if arguments.child:
        print(
            json.dumps(
                run_phase(arguments.child, arguments.sizes[0], arguments.threads, arguments.device)
            )
        )
        return {}
    results = []
    for rows in arguments.sizes:
        for phase in arguments.phases:
            results.append(measure(phase, rows, arguments.threads, arguments.device))
            print(json.dumps(results[-1]), flush=True)
    report = {
        "machine": machine(),
        "results": results,
        "growth": {phase: per_row_growth(results, phase) for phase in arguments.phases},
    }
    report["machine"]["load_average_end"] = load_average()
    write_json(arguments.output, report)
    print(json.dumps(report["growth"], indent=2))
    return report


if __name__ == "__main__":
    main()
