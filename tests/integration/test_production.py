"""Production on real servers: the weekly deployment, run by a Prefect worker, on Dask.

The test starts, on 127.0.0.1 and in a temporary folder, a Prefect server, an MLflow server
(SQLite backend), a Dask scheduler with one worker advertising a ``GPU`` resource and one
without, the work pool ``cpu``, the deployments of ``deployments/prefect.yaml`` and a process
worker. It runs the weekly deployment on a small Adult sample and checks what production
relies on: every stage completed, the GPU stages ran on the GPU worker, MLflow holds the
runs, metrics and the new ``candidate`` model version, and the dataset is published with
its manifest and audit log. Everything it started is stopped at the end, pass or fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("prefect_dask")
psutil = pytest.importorskip("psutil")

from prefect.client.orchestration import PrefectClient  # noqa: E402
from prefect.client.schemas.actions import WorkPoolCreate  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.client.schemas.objects import FlowRun, TaskRun  # noqa: E402
from prefect.exceptions import ObjectNotFound  # noqa: E402

from fairdistill.data import bundled_dataset  # noqa: E402
from fairdistill.flows.task_runner import GPU_RESOURCE  # noqa: E402
from fairdistill.tasks.services.concurrency import GPU_TAG  # noqa: E402
from fairdistill.tasks.services.registry import APPROVALS_FILE, CANDIDATE, read_audit_log  # noqa: E402
from fairdistill.tasks.services.storage import sha256_bytes  # noqa: E402

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "regenerate_fair_dataset/regenerate-fair-dataset"
STAGES = {"validate", "prepare", "train_teacher", "distill_student", "generate", "evaluate"}
GPU_STAGES = {"train_teacher", "distill_student", "generate"}
MODEL = "fairdistill-adult_sample"
START_SECONDS = 180
RUN_SECONDS = 300
EPOCHS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def module(command: str, *arguments: str) -> list[str]:
    """``python -m <command> <arguments>`` with this interpreter, so all run in this venv."""
    return [sys.executable, "-m", *command.split(), *arguments]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Services:
    """Processes started for the test, each in its own process group, with a log file."""

    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"

    def wait_for(self, what: str, ready: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            exited = [
                name for name, process in self.processes.items() if process.poll() is not None
            ]
            if exited:
                pytest.fail(f"{', '.join(exited)} exited early\n{self.tails()}")
            if ready():
                return
            time.sleep(0.5)
        pytest.fail(f"{what} not ready after {seconds:.0f} s\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
            for log in sorted(self.logs.glob("*.log"))
        )

    def stop_all(self) -> None:
        """Stop every process group at once; kill what is still running after 15 s."""
        # Descendants too: a flow run the worker started in a session of its own.
        descendants = [child for p in self.processes.values() for child in _descendants(p.pid)]
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _descendants(pid: int) -> list[Any]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class Endpoints:
    """Where the services listen (free loopback ports) and where their state lives."""

    root: Path
    prefect_port: int = field(default_factory=free_port)
    mlflow_port: int = field(default_factory=free_port)
    dask_port: int = field(default_factory=free_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def scheduler(self) -> str:
        return f"tcp://127.0.0.1:{self.dask_port}"

    def environment(self) -> dict[str, str]:
        environment = {
            **os.environ,
            "PREFECT_HOME": str(self.root / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "FAIRDISTILL_HOME": str(self.root / "home"),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "FAIRDISTILL_DASK_ADDRESS": self.scheduler,
        }
        # Unset while deploying, so the pull step keeps the placeholder the worker fills in.
        environment.pop("FAIRDISTILL_PROJECT_DIR", None)
        # The default: the flow ensures the `gpu` tag limit with one slot.
        environment.pop("FAIRDISTILL_GPU_SLOTS", None)
        return environment


def start_servers_and_cluster(services: Services, endpoints: Endpoints) -> None:
    environment = endpoints.environment()
    services.start(
        "prefect-server",
        module(
            "prefect server start --host 127.0.0.1 --no-ui --no-scheduler --no-late-runs",
            f"--port={endpoints.prefect_port}",
        ),
        environment,
    )
    services.start(
        "mlflow-server",
        module(
            f"mlflow server --host 127.0.0.1 --port {endpoints.mlflow_port} --workers 1",
            f"--backend-store-uri=sqlite:///{endpoints.root / 'mlflow.db'}",
            f"--default-artifact-root={endpoints.root / 'mlartifacts'}",
        ),
        environment,
    )
    services.start(
        "dask-scheduler",
        module(f"dask scheduler --host 127.0.0.1 --port {endpoints.dask_port} --no-dashboard"),
        environment,
    )
    # Preloading the pipeline spares the first stage on each worker its imports.
    worker = f"dask worker {endpoints.scheduler} --host 127.0.0.1 --nthreads 1 --no-nanny"
    worker += " --no-dashboard --preload fairdistill.flows.regenerate"
    local = f"--local-directory={endpoints.root / 'dask'}"
    gpu = f"{worker} --name gpu --resources {GPU_RESOURCE}=1"
    services.start("dask-gpu-worker", module(gpu, local), environment)
    services.start("dask-cpu-worker", module(f"{worker} --name cpu", local), environment)


def deploy_and_start_worker(services: Services, endpoints: Endpoints) -> None:
    environment = endpoints.environment()
    asyncio.run(create_pool(endpoints.api_url))
    # The worker starts while `prefect deploy` runs: both spend most of it importing.
    services.start(
        "prefect-worker",
        module("prefect --no-prompt worker start --pool cpu --type process --install-policy never"),
        {**environment, "FAIRDISTILL_PROJECT_DIR": str(REPO_ROOT)},
    )
    services.run(
        "prefect deploy",
        module(
            "prefect --no-prompt deploy --prefect-file deployments/prefect.yaml",
            "--name=regenerate-fair-dataset",
        ),
        environment,
    )


@dataclass(frozen=True)
class ProductionRun:
    flow_run: FlowRun
    task_runs: list[TaskRun]
    tracking_uri: str
    gpu_worker: str
    cpu_worker: str
    output: Path
    data: Path
    gpu_slots: int | None


def run_parameters(data: Path, spec: Path, output: Path) -> dict[str, Any]:
    return {
        "config": {
            "data": str(data),
            "spec": str(spec),
            "output": str(output),
            "experiment": "production",
            "teacher": {"epochs": EPOCHS},
            "student": {"epochs": EPOCHS},
            # The gates read gradient-boosting metrics; fewer neighbour rows keep it quick.
            "evaluate": {"families": ["gradient_boosting"], "max_rows": 500},
            # Loose but set, so the registered version carries gate results.
            "gates": {
                "min_utility_ratio": 0.0,
                "max_exact_copy_rate": 1.0,
                "max_exact_copy_excess": None,
                "max_dcr_share_below_holdout_p5": None,
            },
        }
    }


async def create_pool(api_url: str) -> None:
    template = json.loads((REPO_ROOT / "deployments/work-pools/process.json").read_text())
    async with PrefectClient(api=api_url) as client:
        await client.create_work_pool(
            WorkPoolCreate(name="cpu", type="process", base_job_template=template)
        )


async def start_run(api_url: str, parameters: dict[str, Any]) -> str:
    async with PrefectClient(api=api_url) as client:
        deployment = await client.read_deployment_by_name(DEPLOYMENT)
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id, parameters=parameters
        )
        return str(flow_run.id)


async def read_gpu_slots(api_url: str) -> int | None:
    async with PrefectClient(api=api_url) as client:
        try:
            return (await client.read_concurrency_limit_by_tag(GPU_TAG)).concurrency_limit
        except ObjectNotFound:
            return None


async def read_run(api_url: str, flow_run_id: str) -> tuple[FlowRun, list[TaskRun]]:
    async with PrefectClient(api=api_url) as client:
        flow_run = await client.read_flow_run(flow_run_id)
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
        return flow_run, task_runs


def dask_workers(scheduler: str) -> dict[str, dict[str, Any]]:
    with distributed.Client(scheduler, timeout=10) as client:
        return client.scheduler_info()["workers"]


@pytest.fixture(scope="module")
def small_adult(tmp_path_factory: pytest.TempPathFactory, adult_frame: pl.DataFrame) -> Path:
    """1,500 Adult rows (every sex and income cell above the spec's 50) and the spec."""
    folder = tmp_path_factory.mktemp("input")
    adult_frame.sample(n=1500, seed=7).write_parquet(folder / "adult_sample.parquet")
    shutil.copy(bundled_dataset("adult").spec_path, folder / "adult.yaml")
    return folder


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, small_adult: Path, pytestconfig: pytest.Config
) -> Iterator[ProductionRun]:
    started = time.monotonic()
    endpoints = Endpoints(tmp_path_factory.mktemp("production"))
    (endpoints.root / "logs").mkdir()
    services = Services(endpoints.root / "logs")
    timings = []
    try:
        start_servers_and_cluster(services, endpoints)
        services.wait_for("Prefect", lambda: answers(f"{endpoints.api_url}/health"), START_SECONDS)
        deploy_and_start_worker(services, endpoints)
        services.wait_for("MLflow", lambda: answers(f"{endpoints.tracking_uri}/health"), 60)
        services.wait_for("Dask", lambda: len(dask_workers(endpoints.scheduler)) == 2, 60)
        timings.append(f"services ready {time.monotonic() - started:.0f} s")
        workers = dask_workers(endpoints.scheduler)
        data = small_adult / "adult_sample.parquet"
        output = endpoints.root / "published"
        parameters = run_parameters(data, small_adult / "adult.yaml", output)
        flow_run_id = asyncio.run(start_run(endpoints.api_url, parameters))
        run_started = time.monotonic()

        def finished() -> bool:
            flow_run, _ = asyncio.run(read_run(endpoints.api_url, flow_run_id))
            return flow_run.state is not None and flow_run.state.is_final()

        services.wait_for("the flow run", finished, RUN_SECONDS)
        timings.append(f"flow run {time.monotonic() - run_started:.0f} s")
        flow_run, task_runs = asyncio.run(read_run(endpoints.api_url, flow_run_id))
        if not flow_run.state.is_completed():
            pytest.fail(f"flow run ended {flow_run.state.name}\n{services.tails()}")
        (gpu_worker,) = [a for a, info in workers.items() if info["resources"].get(GPU_RESOURCE)]
        (cpu_worker,) = set(workers) - {gpu_worker}
        yield ProductionRun(
            flow_run,
            task_runs,
            endpoints.tracking_uri,
            gpu_worker,
            cpu_worker,
            output,
            data,
            asyncio.run(read_gpu_slots(endpoints.api_url)),
        )
    finally:
        services.stop_all()
        timings.append(f"total with teardown {time.monotonic() - started:.0f} s")
        # Shown even when pytest captures output: the test's cost is worth watching.
        capture = pytestconfig.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nproduction integration test: {', '.join(timings)}")


@pytest.fixture(scope="module")
def stage_runs(production: ProductionRun) -> dict[str, mlflow.entities.Run]:
    client = mlflow.MlflowClient(production.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("production").experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{production.flow_run.id}'",
    )
    return {run.data.tags["fairdistill.stage"]: run for run in runs}


def test_the_deployment_ran_every_stage_through_the_worker(production: ProductionRun) -> None:
    assert production.flow_run.work_pool_name == "cpu"
    assert production.flow_run.deployment_id is not None
    states = {run.name.rsplit("-", 1)[0]: run.state for run in production.task_runs}
    assert set(states) == STAGES | {"publish"}
    assert all(state is not None and state.is_completed() for state in states.values())


def test_gpu_stages_ran_on_the_gpu_worker_and_the_rest_needed_none(
    production: ProductionRun, stage_runs: dict[str, mlflow.entities.Run]
) -> None:
    placed = {
        stage: run.data.tags["fairdistill.worker"]
        for stage, run in stage_runs.items()
        if stage != "flow"
    }

    assert {placed[stage] for stage in GPU_STAGES} == {production.gpu_worker}
    for stage in STAGES - GPU_STAGES:
        assert placed[stage] in {production.gpu_worker, production.cpu_worker}
    # publish runs in the flow's own process, outside Dask.
    assert not placed["publish"].startswith("tcp://")
    # The run created the tag limit that keeps GPU stages of all runs to one at a time.
    assert production.gpu_slots == 1


def test_the_mlflow_server_holds_runs_metrics_and_the_candidate(
    production: ProductionRun, stage_runs: dict[str, mlflow.entities.Run]
) -> None:
    client = mlflow.MlflowClient(production.tracking_uri)

    assert set(stage_runs) == STAGES | {"publish", "flow"}
    assert all(run.info.status == "FINISHED" for run in stage_runs.values())
    parent_id = stage_runs["flow"].info.run_id
    assert all(
        run.data.tags["mlflow.parentRunId"] == parent_id
        for stage, run in stage_runs.items()
        if stage != "flow"
    )
    teacher_id = stage_runs["train_teacher"].info.run_id
    assert len(client.get_metric_history(teacher_id, "loss")) == EPOCHS
    assert "tstr.gradient_boosting.auroc" in stage_runs["evaluate"].data.metrics
    candidate = client.get_model_version_by_alias(MODEL, CANDIDATE)
    assert candidate.run_id == stage_runs["publish"].info.run_id
    assert candidate.tags["fairdistill.gates"] == "passed"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(production.tracking_uri)
    try:
        generator = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CANDIDATE}")
    finally:
        mlflow.set_tracking_uri(previous)
    rows = generator.predict(pl.DataFrame({"rows": [25]}).to_pandas())
    assert len(rows) == 25 and set(pl.read_parquet(production.data).columns) == set(rows.columns)


def test_the_dataset_is_published_with_manifest_and_audit_log(
    production: ProductionRun, stage_runs: dict[str, mlflow.entities.Run]
) -> None:
    folder = (production.output / "latest").resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    candidate = mlflow.MlflowClient(production.tracking_uri).get_model_version_by_alias(
        MODEL, CANDIDATE
    )

    assert manifest["output"]["sha256"] == sha256_bytes((folder / "synthetic.parquet").read_bytes())
    assert manifest["mlflow"]["run_id"] == stage_runs["flow"].info.run_id
    assert manifest["prefect"]["flow_run_id"] == str(production.flow_run.id)
    assert manifest["registry"] == {
        "model": MODEL,
        "version": int(candidate.version),
        "alias": CANDIDATE,
        "reused": False,
    }
    (move,) = read_audit_log(folder / APPROVALS_FILE)
    assert (move.alias, move.to_version, move.from_version) == (
        CANDIDATE,
        int(candidate.version),
        None,
    )
