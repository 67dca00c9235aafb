"""Where a stage ran: the Dask worker's address on a cluster, host and process elsewhere."""

from __future__ import annotations

import os
import socket

import pytest

from fairdistill.tasks.tracking import worker_identity


def test_outside_dask_a_stage_names_its_host_and_process() -> None:
    assert worker_identity() == f"{socket.gethostname()} pid {os.getpid()}"


def test_on_a_dask_worker_a_stage_names_the_workers_address() -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        (address,) = client.scheduler_info()["workers"]
        assert client.submit(worker_identity, pure=False).result() == address
