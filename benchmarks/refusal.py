"""How fast the command refuses a bad input, and how long ``validate`` takes on Adult.

Each case runs the real command (``python -m fairdistill.flows.cli``) as a fresh process in
a throw-away home, ``--repeats`` times, and records the wall time of the whole process
(imports, exit included), its CPU time, its exit code, its first ``error:`` line and the
load average before and after. The targets: a bad file refused in at most 3 s, ``validate``
on Adult in at most 5 s, on a two-core machine.

Cases:

- ``header_only``: ``run`` on a CSV file with a header and no rows (the reader refuses it);
- ``unknown_column``: ``run`` whose spec names a column the table lacks;
- ``adult_small_group``: ``run`` on a copy of Adult (48,842 rows) whose spec asks for more
  rows per group than it has (fairdistill's own checks refuse it);
- ``adult_out_of_range``: ``run`` on that copy with a spec bound the data breaks (an
  expectation of the Great Expectations suite, which the command evaluates with polars);
- ``validate_adult``: ``validate --dataset adult`` (passes; the whole suite runs);
- ``validate_adult_copy``: ``validate`` on the copy with its spec (the same, as a user's file).

Run it from the repository root::

    .venv/bin/python -m benchmarks.refusal --repeats 5

``--python`` runs another interpreter's fairdistill (a checkout of earlier code, say) for a
before/after comparison; ``--cases`` picks cases.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from benchmarks.speed_common import (
    DEFAULT_OUTPUT_DIR,
    QUIET_ENVIRONMENT,
    load_average,
    machine,
    write_json,
)
from fairdistill.data import bundled_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS_S = {"refusal": 3.0, "validate": 5.0}
LOANS_SPEC = {
    "name": "loans",
    "target": {"column": "approved", "positive": "yes"},
    "sensitive": [{"column": "sex", "privileged": ["male"]}],
}


def header_only(folder: Path) -> list[str]:
    data = folder / "loans.csv"
    data.write_text("sex,age,approved\n", encoding="utf-8")
    return ["run", "--data", str(data), "--spec", str(write_yaml(folder / "spec.yaml", LOANS_SPEC))]


def unknown_column(folder: Path) -> list[str]:
    data = folder / "loans.csv"
    data.write_text("sex,age,approved\n" + "male,30,yes\nfemale,41,no\n" * 100, encoding="utf-8")
    spec = {**LOANS_SPEC, "columns": {"salary": {"type": "continuous"}}}
    return ["run", "--data", str(data), "--spec", str(write_yaml(folder / "spec.yaml", spec))]


def adult_copy(folder: Path, **spec_changes: Any) -> tuple[Path, Path]:
    bundled = bundled_dataset("adult")
    data = folder / "adult.parquet"
    shutil.copy(bundled.data_path, data)
    spec = yaml.safe_load(bundled.spec_path.read_text(encoding="utf-8"))
    for key, value in spec_changes.items():
        spec[key] = value
    return data, write_yaml(folder / "adult.yaml", spec)


def adult_small_group(folder: Path) -> list[str]:
    data, spec = adult_copy(folder, min_group_rows=20_000)
    return ["run", "--data", str(data), "--spec", str(spec)]


def adult_out_of_range(folder: Path) -> list[str]:
    bundled = yaml.safe_load(bundled_dataset("adult").spec_path.read_text(encoding="utf-8"))
    columns = {**bundled["columns"], "age": {**bundled["columns"]["age"], "max": 80}}
    data, spec = adult_copy(folder, columns=columns)
    return ["run", "--data", str(data), "--spec", str(spec)]


def validate_adult(_: Path) -> list[str]:
    return ["validate", "--dataset", "adult"]


def validate_adult_copy(folder: Path) -> list[str]:
    data, spec = adult_copy(folder)
    return ["validate", "--data", str(data), "--spec", str(spec)]


CASES: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "header_only": ("refusal", header_only),
    "unknown_column": ("refusal", unknown_column),
    "adult_small_group": ("refusal", adult_small_group),
    "adult_out_of_range": ("refusal", adult_out_of_range),
    "validate_adult": ("validate", validate_adult),
    "validate_adult_copy": ("validate", validate_adult_copy),
}


def write_yaml(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return path


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(python: str, arguments: list[str], home: Path) -> dict[str, Any]:
    environment = {**os.environ, **QUIET_ENVIRONMENT, "FAIRDISTILL_HOME": str(home)}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_HOME", "PREFECT_API_URL"):
        environment.pop(name, None)
    load_before = load_average()
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        [python, "-m", "fairdistill.flows.cli", *arguments],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wall = time.perf_counter() - started
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(children_cpu_seconds() - cpu_before, 3),
        "exit_code": completed.returncode,
        "error": errors[0][:200] if errors else None,
        "stderr_lines": len(completed.stderr.splitlines()),
        "load_before": load_before,
        "load_after": load_average(),
    }


def measure(name: str, python: str, repeats: int) -> dict[str, Any]:
    kind, build = CASES[name]
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"fairdistill-refusal-{name}-") as scratch:
        folder = Path(scratch)
        arguments = build(folder)
        for repeat in range(repeats):
            runs.append(run_once(python, arguments, folder / f"home-{repeat}"))
    walls = [run["wall_s"] for run in runs]
    return {
        "kind": kind,
        "target_s": TARGETS_S[kind],
        "command": ["fairdistill", *arguments],
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_min_s": min(walls),
        "wall_max_s": max(walls),
        "cpu_median_s": round(statistics.median(run["cpu_s"] for run in runs), 3),
        "runs": runs,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} cores, "
        f"Python {report['machine']['python']}, {report['machine']['date_utc']}; "
        f"load average at the start {report['machine']['load_average']}; "
        f"bytecode written: {report['machine']['python_writes_bytecode']}",
        "",
        "| case | exit | wall median (min-max) s | CPU median s | target s | load 1 min |",
        "|---|---|---|---|---|---|",
    ]
    for name, case in report["cases"].items():
        loads = [run["load_before"][0] for run in case["runs"]]
        lines.append(
            f"| {name} | {case['runs'][0]['exit_code']} | {case['wall_median_s']:.2f} "
            f"({case['wall_min_s']:.2f}-{case['wall_max_s']:.2f}) | {case['cpu_median_s']:.2f} "
            f"| {case['target_s']:.0f} | {min(loads):.2f}-{max(loads):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--label", default="current")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR)
    options = parser.parse_args(argv)
    names = [name for name in options.cases.split(",") if name]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)} (known: {', '.join(CASES)})")
    report = {
        "machine": machine(),
        "python": options.python,
        "repeats": options.repeats,
        "cases": {name: measure(name, options.python, options.repeats) for name in names},
    }
    path = options.output / f"refusal-{options.label}.json"
    write_json(path, report)
    print(markdown(report), end="")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
