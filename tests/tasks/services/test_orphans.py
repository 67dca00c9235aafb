"""Runs left RUNNING by a killed process are ended by the next run, and only those.

Real processes are killed here (SIGKILL, as the out-of-memory killer does), real Prefect
flow and task runs end, on a real MLflow SQLite store; a run that nothing proves dead
(a live process, another machine, a Prefect run nobody knows) stays RUNNING.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from prefect import flow, task

from fairdistill.tasks.services.orphans import (
    FAILURE_TAG,
    PROCESS_ID_TAG,
    PROCESS_MACHINE_TAG,
    PROCESS_STARTED_TAG,
    end_orphaned_runs,
    process_tags,
)

pytestmark = pytest.mark.slow

# A flow run's MLflow runs, as the flow and its first stage open them, then it waits.
RUN_AND_WAIT = """
import sys, time
import mlflow
from fairdistill.tasks.services.orphans import process_tags
from fairdistill.tasks.services.tracking import StageContext, stage_run

uri, experiment = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
tags = {"fairdistill.stage": "flow", **process_tags()}
with mlflow.start_run(experiment_id=experiment, tags=tags) as parent:
    context = StageContext(
        tracking_uri=uri,
        experiment_id=experiment,
        parent_run_id=parent.info.run_id,
        work_uri="memory://unused",
        checkpoint_root="memory://unused",
    )
    with stage_run(context, "train_teacher") as child:
        print(parent.info.run_id, child.info.run_id, flush=True)
        time.sleep(600)
"""


@dataclass(frozen=True)
class Store:
    uri: str
    experiment_id: str

    @property
    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(self.uri)

    def status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    def run_with(self, tags: dict[str, str]) -> str:
        return self.client.create_run(self.experiment_id, tags=tags).info.run_id


@dataclass(frozen=True)
class RunningProcess:
    process: subprocess.Popen
    run_ids: tuple[str, str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("orphans")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("orphans", artifact_location=(root / "a").as_uri())
    return Store(uri, experiment)


def start_run_process(store: Store) -> RunningProcess:
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_AND_WAIT, store.uri, store.experiment_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    parent, child = process.stdout.readline().split()
    return RunningProcess(process, (parent, child))


@pytest.fixture(scope="module")
def killed_and_alive(store: Store) -> Iterator[tuple[RunningProcess, RunningProcess]]:
    killed, alive = start_run_process(store), start_run_process(store)
    killed.process.kill()
    killed.process.wait()
    yield killed, alive
    alive.process.kill()
    alive.process.wait()


def test_a_killed_process_runs_are_ended_and_a_live_one_s_are_not(
    store: Store, killed_and_alive: tuple[RunningProcess, RunningProcess]
) -> None:
    killed, alive = killed_and_alive
    assert all(store.status(run_id) == "RUNNING" for run_id in killed.run_ids)

    ended = end_orphaned_runs(store.uri, finder_run_id="the-next-run")

    assert {run.run_id for run in ended} >= set(killed.run_ids)
    assert not {run.run_id for run in ended} & set(alive.run_ids)
    for run_id in killed.run_ids:
        run = store.client.get_run(run_id)
        assert run.info.status == "KILLED" and run.info.end_time is not None
        reason = run.data.tags[FAILURE_TAG]
        assert f"its process (pid {killed.process.pid}) is gone" in reason
        assert reason.endswith("ended by MLflow run the-next-run")
    assert all(store.status(run_id) == "RUNNING" for run_id in alive.run_ids)


def test_nothing_proves_dead_a_run_of_another_machine_or_an_unknown_one(store: Store) -> None:
    here = process_tags()
    elsewhere = {**here, PROCESS_MACHINE_TAG: "another-host 1234 pid:[1]"}
    kept = {
        "another machine": store.run_with({"fairdistill.stage": "flow", **elsewhere}),
        "no process recorded": store.run_with({"fairdistill.stage": "prepare"}),
        "not a fairdistill run": store.run_with({**here, PROCESS_STARTED_TAG: "1.0"}),
        "an unknown task run": store.run_with(
            {"fairdistill.stage": "generate", "prefect.task_run_id": str(uuid.uuid4())}
        ),
        "the run looking": store.run_with({"fairdistill.stage": "flow", **here}),
    }
    finder = kept["the run looking"]

    end_orphaned_runs(store.uri, finder_run_id=finder)

    assert {name: store.status(run_id) for name, run_id in kept.items()} == dict.fromkeys(
        kept, "RUNNING"
    )


def test_a_process_id_taken_by_another_process_proves_the_run_dead(store: Store) -> None:
    # This process holds the recorded id, but it started later than the recorded one.
    reused = {**process_tags(), PROCESS_ID_TAG: str(os.getpid()), PROCESS_STARTED_TAG: "1.0"}
    run_id = store.run_with({"fairdistill.stage": "evaluate", **reused})

    end_orphaned_runs(store.uri)

    run = store.client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert "another process has its id now" in run.data.tags[FAILURE_TAG]


@task
def finishes() -> int:
    return 1


@flow
def crashes_after_a_task() -> None:
    finishes()
    raise RuntimeError("the flow process died")


def test_runs_whose_prefect_run_ended_are_ended(store: Store) -> None:
    state = crashes_after_a_task(return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    task_run = finishes(return_state=True)
    elsewhere = {PROCESS_MACHINE_TAG: "another-host", PROCESS_ID_TAG: "1"}
    flow_run = store.run_with(
        {"fairdistill.stage": "flow", "prefect.flow_run_id": flow_run_id, **elsewhere}
    )
    stage_run = store.run_with(
        {
            "fairdistill.stage": "prepare",
            "prefect.task_run_id": str(task_run.state_details.task_run_id),
            **elsewhere,
        }
    )

    end_orphaned_runs(store.uri)

    flow_record, stage_record = (store.client.get_run(i) for i in (flow_run, stage_run))
    assert flow_record.info.status == stage_record.info.status == "KILLED"
    assert f"its Prefect flow run {flow_run_id} is failed" in flow_record.data.tags[FAILURE_TAG]
    assert "its Prefect task run" in stage_record.data.tags[FAILURE_TAG]
    assert "is completed" in stage_record.data.tags[FAILURE_TAG]


def test_the_tags_name_this_process() -> None:
    tags = process_tags()
    assert tags[PROCESS_ID_TAG] == str(os.getpid())
    assert float(tags[PROCESS_STARTED_TAG]) > 0
    assert tags[PROCESS_MACHINE_TAG].startswith(socket.gethostname())
