"""deployments/prefect.yaml: what it schedules and runs, and that `prefect deploy` takes it."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from prefect.utilities.importtools import import_object

from fairdistill.models.config import RunConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"
WORK_POOLS = REPO_ROOT / "deployments" / "work-pools"
FLOW_NAME = "regenerate_fair_dataset"
SCHEDULED = "regenerate-fair-dataset"
ON_DEMAND = "regenerate-fair-dataset-gpu"
# Loopback only; deploying needs neither the background services nor the UI.
SERVER_OPTIONS = ("--host", "127.0.0.1", "--no-services", "--no-ui")


@pytest.fixture(scope="module")
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_FILE.read_text(encoding="utf-8"))


def deployment(prefect_yaml: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [d for d in prefect_yaml["deployments"] if d["name"] == name]
    return found


def test_two_deployments_on_the_cpu_and_gpu_pools(prefect_yaml: dict[str, Any]) -> None:
    pools = {d["name"]: d["work_pool"]["name"] for d in prefect_yaml["deployments"]}

    assert pools == {SCHEDULED: "cpu", ON_DEMAND: "gpu"}


def test_the_cpu_deployment_runs_weekly_at_a_fixed_utc_time(
    prefect_yaml: dict[str, Any],
) -> None:
    (schedule,) = deployment(prefect_yaml, SCHEDULED)["schedules"]
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])

    assert (cron.cron, cron.timezone) == ("0 3 * * 1", "UTC")
    assert schedule["active"] is True


def test_the_gpu_deployment_has_no_schedule(prefect_yaml: dict[str, Any]) -> None:
    assert deployment(prefect_yaml, ON_DEMAND)["schedules"] == []


def test_default_parameters_are_a_valid_run_config(prefect_yaml: dict[str, Any]) -> None:
    for entry in prefect_yaml["deployments"]:
        config = RunConfig.model_validate(entry["parameters"]["config"])
        assert (config.dataset, config.seed) == ("adult", 0)


def test_entrypoint_names_the_flow_function(prefect_yaml: dict[str, Any]) -> None:
    for entry in prefect_yaml["deployments"]:
        module_name, function_name = entry["entrypoint"].split(":")
        # A module path: a flow loaded from a file path gets a module name Dask workers
        # cannot import (tests/integration runs the deployment on Dask).
        assert not module_name.endswith(".py")
        source = importlib.util.find_spec(module_name).origin
        module = ast.parse(Path(source).read_text(encoding="utf-8"))
        (function,) = [
            node
            for node in module.body
            if isinstance(node, ast.FunctionDef) and node.name == function_name
        ]
        (decorator,) = function.decorator_list
        assert isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "flow"
        names = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords if k.arg == "name"}
        # `prefect deployment run '<flow name>/<deployment>'` depends on this name.
        assert names == {"name": FLOW_NAME}
        assert [a.arg for a in function.args.args] == ["config"]


def test_code_is_pulled_from_the_checkout_not_built(prefect_yaml: dict[str, Any]) -> None:
    assert prefect_yaml["build"] is None and prefect_yaml["push"] is None
    ((step_name, step_inputs),) = prefect_yaml["pull"][0].items()

    assert import_object(step_name).__name__ == "set_working_directory"
    assert step_inputs == {"directory": "{{ $FAIRDISTILL_PROJECT_DIR }}"}


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    environment: dict[str, str]


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(server: subprocess.Popen[bytes], api_url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server did not become healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = str(free_local_port())
    api_url = f"http://127.0.0.1:{port}/api"
    environment = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url}
    # Unset, the pull step keeps its placeholder for the worker to resolve at run time.
    environment.pop("FAIRDISTILL_PROJECT_DIR", None)
    log = home / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", *SERVER_OPTIONS, "--port", port],
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(server, api_url, log)
            yield PrefectServer(api_url=api_url, environment=environment)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def create_pools_and_read_deployments(
    api_url: str, deploy: list[str], env: dict[str, str]
) -> list[DeploymentResponse]:
    async with PrefectClient(api=api_url) as client:
        for pool, pool_type, template in [
            ("cpu", "process", "process.json"),
            ("gpu", "docker", "docker-gpu.json"),
        ]:
            base_job_template = json.loads((WORK_POOLS / template).read_text())
            await client.create_work_pool(
                WorkPoolCreate(name=pool, type=pool_type, base_job_template=base_job_template)
            )
        result = await asyncio.to_thread(
            subprocess.run, deploy, cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return [
            await client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
            for name in (SCHEDULED, ON_DEMAND)
        ]


@pytest.mark.slow
def test_prefect_deploy_accepts_the_file_on_a_real_server(prefect_server: PrefectServer) -> None:
    deploy = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    deploy += ["--prefect-file", str(PREFECT_FILE.relative_to(REPO_ROOT))]

    scheduled, on_demand = asyncio.run(
        create_pools_and_read_deployments(
            prefect_server.api_url, deploy, prefect_server.environment
        )
    )

    assert scheduled.work_pool_name == "cpu" and on_demand.work_pool_name == "gpu"
    (schedule,) = scheduled.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * 1", "UTC")
    assert on_demand.schedules == []
    assert scheduled.parameters == {"config": {"dataset": "adult", "seed": 0}}
    assert scheduled.enforce_parameter_schema is True
    assert "config" in scheduled.parameter_openapi_schema["properties"]
    assert scheduled.pull_steps == [
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": "{{ $FAIRDISTILL_PROJECT_DIR }}"
            }
        }
    ]
