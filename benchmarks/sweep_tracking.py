"""Log a β sweep to MLflow: one parent run with the curve, one child run per β.

The parent holds the plot, the table and the raw points; each child holds its β as a
parameter and the mean over seeds of every swept measure, so the MLflow UI can chart any
measure against β (or against another measure) across the children.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from fairdistill.flows.settings import load_settings
from fairdistill.tasks.services.tracking import ensure_experiment

SWEEP_EXPERIMENT = "fairdistill-beta-sweep"


def mean_by_beta(sweep: dict[str, Any], keys: list[str]) -> dict[float, dict[str, float]]:
    """Per β, the mean over seeds of each measure present in every seed's metrics."""
    means = {}
    for beta in sweep["betas"]:
        runs = [point["metrics"] for point in sweep["points"] if point["beta"] == beta]
        means[float(beta)] = {
            key: float(np.mean([run[key] for run in runs]))
            for key in keys
            if runs and all(key in run and run[key] == run[key] for run in runs)
        }
    return means


def log_sweep(
    sweep: dict[str, Any],
    keys: list[str],
    plot: Path,
    table_markdown: str,
    *,
    tracking_uri: str | None = None,
) -> str:
    """Log ``sweep`` (as :func:`benchmarks.fairness.run_sweep` returns it) to MLflow.

    Returns the parent run's id. The store is fairdistill's own unless ``tracking_uri``
    names another.
    """
    settings = load_settings()
    uri = tracking_uri or settings.tracking_uri
    experiment_id = ensure_experiment(uri, SWEEP_EXPERIMENT, settings.mlflow_artifacts)
    case = sweep.get("case", "sweep")
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"beta-sweep-{case}") as parent:
        mlflow.log_params(
            {
                "case": case,
                "attribute": sweep.get("attribute", ""),
                "betas": ",".join(f"{beta:g}" for beta in sweep["betas"]),
                "seeds": ",".join(str(seed) for seed in sweep["seeds"]),
            }
        )
        if "command" in sweep:
            mlflow.set_tag("command", sweep["command"])
        for beta, means in mean_by_beta(sweep, keys).items():
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"beta {beta:g}", nested=True
            ):
                mlflow.log_param("beta", beta)
                mlflow.log_metrics(means)
        mlflow.log_artifact(str(plot))
        mlflow.log_text(table_markdown, "beta_sweep.md")
        with tempfile.TemporaryDirectory() as folder:
            points = Path(folder) / "beta_sweep.json"
            points.write_text(json.dumps(sweep, indent=1, default=float), encoding="utf-8")
            mlflow.log_artifact(str(points))
        return parent.info.run_id
