"""Conditional generation on the full bundled Adult with the product defaults.

One real ``fairdistill run --dataset adult`` (defaults, ``--quiet``) in a throw-away home,
then ``fairdistill generate`` from that run's manifest, ``--rows`` rows (10,000 by default)
for each of a handful of conditions of different rarity. Each command is a fresh process
(``python -m fairdistill.flows.cli``). Recorded per condition:

- the share of the real training rows (the run's recorded split) meeting the condition;
- the draw: the generator's estimated share of its unconditional rows meeting it, the
  pilot and fill draws, and the acceptance rate of the fill after the mixture components
  were reweighted (accepted / drawn, from the manifest's draw statistics);
- the wall time of the whole ``generate`` process, its exit code, and the rows delivered
  (they must equal the rows asked);
- the evaluation on the matching real test slice, as the manifest records it: AUROC, F1,
  accuracy, positive prediction rate and the demographic parity ratio of a classifier
  trained on the conditional rows (TSTR) and of the reference trained on the real
  training slice (TRTR), or why there is no number.

The machine and the load average before and after each command are kept next to the
times: on a shared machine a busy neighbour inflates wall time.

Run it from the repository root::

    .venv/bin/python -m benchmarks.conditional

It writes ``benchmarks/results/conditional.json`` (``--output`` elsewhere). ``--home DIR``
keeps the home instead of a temporary one; a run already published there is reused (and
recorded as reused), so the conditions can be measured again without retraining.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.speed_common import QUIET_ENVIRONMENT, load_average, machine, write_json
from fairdistill.flows.conditional_generation import recorded_split
from fairdistill.models.conditions import Condition, ConditionSet
from fairdistill.models.spec import DatasetSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "conditional.json"
# From common to rare on Adult; one holds on a sensitive attribute, one on the target.
CASES: dict[str, list[str]] = {
    "female": ["sex == Female"],
    "age_60_plus": ["age >= 60"],
    "self_emp_inc_or_federal": ["workclass in [Self-emp-inc, Federal-gov]"],
    "age_70_plus_and_50h_plus": ["age >= 70", "hours_per_week >= 50"],
    "high_income_women": ["income == >50K", "sex == Female"],
}
PIPELINE_TIMEOUT_S = 3600
GENERATE_TIMEOUT_S = 1200


def run_command(arguments: list[str], home: Path, timeout: int) -> dict[str, Any]:
    """One fresh CLI process in ``home``; its wall time, exit code and load around it."""
    environment = {**os.environ, **QUIET_ENVIRONMENT, "FAIRDISTILL_HOME": str(home)}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_HOME", "PREFECT_API_URL"):
        environment.pop(name, None)
    load_before = load_average()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "fairdistill.flows.cli", *arguments],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "exit_code": completed.returncode,
        "error": errors[0][:300] if errors else None,
        "load_before": load_before,
        "load_after": load_average(),
    }


def condition_set(manifest: dict[str, Any]) -> ConditionSet:
    """The conditions as ``generate`` bound them, rebuilt from its manifest."""
    conditions = []
    for item in manifest["conditions"]:
        values = tuple(item["values"])
        kind = "number" if all(isinstance(v, int | float) for v in values) else "category"
        conditions.append(Condition(item["text"], item["column"], item["op"], values, kind))
    return ConditionSet(tuple(conditions))


def real_share(train: pl.DataFrame, manifest: dict[str, Any]) -> float:
    return float(condition_set(manifest).mask(train).mean())


def draw_summary(draw: dict[str, Any]) -> dict[str, Any]:
    """The manifest's draw statistics, with the fill's acceptance over all groups."""
    fill_draws = sum(group["draws"] for group in draw["groups"])
    accepted = sum(g["acceptance_after_reweighting"] * g["draws"] for g in draw["groups"])
    return {
        "generator_estimated_rate": draw["estimated_rate"],
        "draws_total": draw["draws"],
        "pilot_draws": sum(group["pilot_draws"] for group in draw["groups"]),
        "fill_draws": fill_draws,
        "acceptance_after_reweighting": accepted / fill_draws if fill_draws else 1.0,
        "groups": draw["groups"],
    }


def evaluation_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The gradient-boosting TSTR and TRTR scores on the real slice, or why there are none."""
    summary: dict[str, Any] = {
        key: evaluation.get(key)
        for key in (
            "status",
            "reason",
            "real_test_slice_rows",
            "real_train_slice_rows",
            "synthetic_positive_rate",
            "real_slice_positive_rate",
        )
    }
    for protocol, outcome in (
        (evaluation.get("families") or {}).get("gradient_boosting", {}).items()
    ):
        if not isinstance(outcome, dict) or "utility" not in outcome:
            continue
        utility = outcome["utility"]
        summary[protocol] = {
            "trained": outcome.get("trained"),
            "reason": outcome.get("reason"),
            "auroc": utility.get("auroc"),
            "f1": utility.get("f1"),
            "accuracy": utility.get("accuracy"),
            "positive_rate": utility.get("positive_prediction_rate"),
            "demographic_parity_ratio": {
                grouping: values.get("demographic_parity_ratio")
                for grouping, values in outcome.get("fairness", {}).items()
            },
        }
    return summary


def measure_case(
    name: str, where: list[str], source: Path, home: Path, rows: int, train: pl.DataFrame
) -> dict[str, Any]:
    output = home / "conditional"
    arguments = ["generate", "--from", str(source), "--rows", str(rows)]
    for condition in where:
        arguments += ["--where", condition]
    arguments += ["--output", str(output), "--run-name", name]
    process = run_command(arguments, home, GENERATE_TIMEOUT_S)
    result: dict[str, Any] = {"where": where, "rows_asked": rows, "process": process}
    manifest_path = output / name / "manifest.json"
    if process["exit_code"] != 0 or not manifest_path.is_file():
        return result
    manifest = json.loads(manifest_path.read_text())
    delivered = pl.read_parquet(output / name / "synthetic.parquet").height
    return {
        **result,
        "rows_delivered": delivered,
        "rows_match": delivered == rows,
        "real_train_share": real_share(train, manifest),
        "draw": draw_summary(manifest["draw"]),
        "evaluation": evaluation_summary(manifest["evaluation"]),
    }


def run_pipeline(home: Path) -> tuple[dict[str, Any], Path]:
    output = home / "published"
    if (output / "adult-benchmark" / "manifest.json").is_file():
        return {"reused": True, "exit_code": 0}, output / "adult-benchmark" / "manifest.json"
    arguments = ["run", "--dataset", "adult", "--quiet", "--output", str(output)]
    process = run_command([*arguments, "--run-name", "adult-benchmark"], home, PIPELINE_TIMEOUT_S)
    return process, output / "adult-benchmark" / "manifest.json"


def measure(rows: int, cases: list[str], home: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"benchmark": "conditional", "machine": machine(), "rows": rows}
    pipeline, source = run_pipeline(home)
    report["pipeline"] = pipeline
    if pipeline["exit_code"] != 0 or not source.is_file():
        return report
    manifest = json.loads(source.read_text())
    split = recorded_split(manifest, DatasetSpec.model_validate(manifest["spec"]))
    if isinstance(split, str):
        report["error"] = split
        return report
    train, test = split
    report["real_rows"] = {"train": train.height, "test": test.height}
    report["source_metrics"] = {
        key: value for key, value in manifest["metrics"].items() if "gradient_boosting" in key
    }
    report["cases"] = {
        name: measure_case(name, CASES[name], source, home, rows, train) for name in cases
    }
    report["machine_after"] = {"load_average": load_average()}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=True)
        report = measure(args.rows, args.cases, args.home.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="fairdistill-conditional-") as scratch:
            report = measure(args.rows, args.cases, Path(scratch))
    write_json(args.output, report)
    print(json.dumps(report, indent=2, default=str))
    cases = report.get("cases", {})
    delivered = cases and all(case.get("rows_match") for case in cases.values())
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
