"""Helpers for the tests that run the real command: inputs, and what a reader of the output
root may ever see (whole runs, a ``latest`` link that resolves, hidden staging)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import polars as pl

from fairdistill.data import bundled_dataset

# Short training and one evaluation family keep a whole run to seconds; the gates are off
# because two epochs do not make a dataset worth gating. Stages are never reused, so each
# run computes everything itself.
FAST_CONFIG = (
    "reuse_stages: false\n"
    "teacher: {epochs: 2}\n"
    "student: {epochs: 2}\n"
    "evaluate: {families: [logistic_regression]}\n"
    "gates: {min_utility_ratio: null, max_exact_copy_excess: null,"
    " max_dcr_share_below_holdout_p5: null}\n"
)


def write_german_input(folder: Path) -> Path:
    """German credit with an identifier and a constant column: both must be handled."""
    frame = pl.read_parquet(bundled_dataset("german").data_path)
    frame = frame.with_columns(
        pl.Series("application_id", [f"G{i:05d}" for i in range(frame.height)]).shuffle(seed=2),
        pl.lit("EUR").alias("currency"),
    )
    frame.write_parquet(folder / "german.parquet")
    shutil.copy(bundled_dataset("german").spec_path, folder / "spec.yaml")
    (folder / "run.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    return folder


def run_command(folder: Path, output: Path, run_name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fairdistill.flows.cli",
        "run",
        "--data",
        str(folder / "german.parquet"),
        "--spec",
        str(folder / "spec.yaml"),
        "--config",
        str(folder / "run.yaml"),
        "--output",
        str(output),
        "--run-name",
        run_name,
        "--json",
    ]


def summary_of(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def inconsistencies(root: Path) -> list[str]:
    """What a reader of ``root`` must never see: a partial run, a manifest without its
    data or not matching it, a ``latest`` link that dangles."""
    found: list[str] = []
    if not root.exists():
        return found
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue  # hidden staging of a publish in progress (or killed)
        if entry.name == "latest":
            target = entry.resolve()
            if not entry.is_symlink() or not target.is_dir() or target.parent != root.resolve():
                found.append(f"latest points at {target}, which is not a published run")
            continue
        found += _run_folder_problems(entry)
    return found


def _run_folder_problems(folder: Path) -> list[str]:
    manifest_path, data_path = folder / "manifest.json", folder / "synthetic.parquet"
    if not manifest_path.is_file() or not data_path.is_file():
        return [f"{folder.name} is incomplete: {sorted(p.name for p in folder.iterdir())}"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    if manifest["output"]["sha256"] != digest:
        return [f"{folder.name}: the manifest does not describe the data beside it"]
    return []
