"""A spec's constraints through the whole flow: the Adult sample with two rules Adult obeys,
published synthetic rows and the registered generator's rows obeying both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import polars as pl
import pytest
import torch
import yaml

from fairdistill.flows.regenerate import regenerate_fair_dataset
from fairdistill.flows.settings import load_settings
from fairdistill.models.config import RunConfig
from fairdistill.models.constraints import parse_rule, rule_breaches

pytestmark = pytest.mark.slow

RULES = ["capital_gain == 0 or capital_loss == 0", "education_num determined by education"]
# Few epochs, as the other end-to-end runs: this checks the rules hold, not quality.
FAST_TRAINING = {"teacher": {"epochs": 3}, "student": {"epochs": 3}}
NAMES = ["capital_gain_eq_0_or_capital_loss_eq_0", "education_num_determined_by_education"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def constrained_run(sample_input: dict, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("constrained")
    spec = yaml.safe_load(Path(sample_input["spec"]).read_text(encoding="utf-8"))
    spec["constraints"] = RULES
    spec_path = folder / "adult.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    config = RunConfig.model_validate(
        {
            "data": sample_input["data"],
            "spec": str(spec_path),
            "output": str(folder / "published"),
            "gates": {
                "min_utility_ratio": None,
                "max_exact_copy_excess": None,
                "max_dcr_share_below_holdout_p5": None,
            },
            **FAST_TRAINING,
        }
    )
    return regenerate_fair_dataset(config)


def test_published_rows_obey_every_constraint(constrained_run) -> None:
    synthetic = pl.read_parquet(constrained_run.published.data)
    manifest = json.loads(Path(constrained_run.published.manifest).read_text())
    assert synthetic.height == manifest["split"]["train_rows"]  # no row dropped
    rules = [parse_rule(text) for text in RULES]
    assert rule_breaches(synthetic, rules) == dict.fromkeys(NAMES, 0)
    assert manifest["spec"]["constraints"] == RULES
    for name in NAMES:
        assert manifest["metrics"][f"constraints.{name}.broken_rows"] == 0.0
    report = Path(constrained_run.published.report).read_text(encoding="utf-8")
    assert "## Constraints" in report and "`education_num determined by education`" in report


def test_the_generate_stage_records_the_repairs(constrained_run) -> None:
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{constrained_run.mlflow_run_id}' "
        "and tags.`fairdistill.stage` = 'generate'",
        output_format="list",
    )
    for name in NAMES:
        share = run.data.metrics[f"constraints.{name}.repaired_share"]
        assert 0.0 <= share <= 1.0
    # Three epochs learn no rule: the decoder's rows needed repairs, and were repaired.
    assert run.data.metrics[f"constraints.{NAMES[1]}.repaired_rows"] > 0


def test_the_registered_generator_repairs_its_rows_too(constrained_run) -> None:
    registry = constrained_run.published.registry
    assert registry is not None
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    generator = mlflow.pyfunc.load_model(f"models:/{registry.model}/{registry.version}")
    sampled = pl.from_pandas(generator.predict(pl.DataFrame({"rows": [500]}).to_pandas()))
    assert sampled.height == 500
    assert rule_breaches(sampled, [parse_rule(text) for text in RULES]) == dict.fromkeys(NAMES, 0)
