"""Scale-out on Dask: the runner reaches the cluster, and GPU stages land on GPU workers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import pytest

from fairdistill.flows.task_runner import GPU_RESOURCE, build_task_runner, gpu_resources
from fairdistill.models.errors import ConfigError

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("prefect_dask")


class TwoWorkerCluster:
    """A scheduler with one GPU-labelled worker and one plain worker, all on 127.0.0.1."""

    def __init__(self) -> None:
        worker_options = {"host": "127.0.0.1", "nthreads": 1}
        self.cluster = distributed.SpecCluster(
            scheduler={
                "cls": distributed.Scheduler,
                "options": {"host": "127.0.0.1", "dashboard_address": None},
            },
            workers={
                "gpu": {
                    "cls": distributed.Worker,
                    "options": {**worker_options, "resources": {GPU_RESOURCE: 1}},
                },
                "cpu": {"cls": distributed.Worker, "options": worker_options},
            },
        )
        with distributed.Client(self.cluster) as client:
            workers = client.scheduler_info()["workers"]
        self.gpu_worker = next(
            address for address, info in workers.items() if info["resources"].get(GPU_RESOURCE)
        )
        self.all_workers = set(workers)

    @property
    def address(self) -> str:
        return self.cluster.scheduler_address


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoWorkerCluster]:
    two_workers = TwoWorkerCluster()
    try:
        yield two_workers
    finally:
        two_workers.cluster.close()


def address_of_current_worker() -> str:
    return distributed.get_worker().address


def test_no_address_keeps_the_flows_default_runner() -> None:
    assert build_task_runner(None) is None
    assert build_task_runner("") is None


def test_an_address_gives_a_dask_runner_on_that_scheduler() -> None:
    from prefect_dask import DaskTaskRunner

    runner = build_task_runner("tcp://127.0.0.1:8786")

    assert isinstance(runner, DaskTaskRunner)
    assert runner.address == "tcp://127.0.0.1:8786"


def test_an_address_without_prefect_dask_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prefect_dask", None)

    with pytest.raises(ConfigError, match="prefect-dask") as raised:
        build_task_runner("tcp://127.0.0.1:8786")

    assert "fairdistill[dask]" in (raised.value.hint or "")


def test_gpu_resources_annotates_only_inside_the_block() -> None:
    with gpu_resources():
        assert dask.get_annotations() == {"resources": {GPU_RESOURCE: 1}}
    assert "resources" not in dask.get_annotations()


def test_gpu_resources_does_nothing_without_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask", None)

    assert isinstance(gpu_resources(), contextlib.nullcontext)


def test_gpu_annotation_places_work_on_the_gpu_worker(cluster: TwoWorkerCluster) -> None:
    with distributed.Client(cluster.address) as client:
        with gpu_resources():
            futures = [client.submit(address_of_current_worker, pure=False) for _ in range(6)]
        placed = client.gather(futures)

    assert set(placed) == {cluster.gpu_worker}


@pytest.mark.slow
def test_flow_on_dask_runs_gpu_tasks_on_the_gpu_worker(cluster: TwoWorkerCluster) -> None:
    from prefect import flow, task

    where_gpu_task_ran = task(address_of_current_worker, name="gpu_stage", tags=["gpu"])
    where_plain_task_ran = task(address_of_current_worker, name="plain_stage")

    @flow(task_runner=build_task_runner(cluster.address))
    def place_stages() -> tuple[list[str], str]:
        with gpu_resources():
            gpu_futures = [where_gpu_task_ran.submit() for _ in range(3)]
        plain_future = where_plain_task_ran.submit()
        return [future.result() for future in gpu_futures], plain_future.result()

    gpu_placements, plain_placement = place_stages()

    assert set(gpu_placements) == {cluster.gpu_worker}
    # Unannotated work may go to either worker, but it must run on the cluster.
    assert plain_placement in cluster.all_workers
