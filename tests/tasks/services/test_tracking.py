"""Where a stage ran (Dask worker, or host and process) and with how many threads."""

from __future__ import annotations

import os
import socket

import pytest
import torch
from threadpoolctl import threadpool_info

from fairdistill.tasks.services.tracking import stage_threads, worker_identity


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


def test_a_stage_limits_torch_blas_and_openmp_threads_and_restores_them() -> None:
    torch_before = torch.get_num_threads()
    torch.set_num_threads(2)
    pools_before = [pool["num_threads"] for pool in threadpool_info()]
    try:
        with stage_threads(1):
            assert torch.get_num_threads() == 1
            pools = threadpool_info()
            # numpy's BLAS at least is loaded, or the limit would be untested.
            assert any(pool["user_api"] == "blas" for pool in pools)
            assert all(pool["num_threads"] == 1 for pool in pools)
        assert torch.get_num_threads() == 2
        assert [pool["num_threads"] for pool in threadpool_info()] == pools_before
    finally:
        torch.set_num_threads(torch_before)


def test_a_two_thread_stage_keeps_blas_at_one_thread() -> None:
    torch_before = torch.get_num_threads()
    try:
        with stage_threads(2):
            assert torch.get_num_threads() == 2
            pools = threadpool_info()
            blas = [pool["num_threads"] for pool in pools if pool["user_api"] == "blas"]
            openmp = [pool["num_threads"] for pool in pools if pool["user_api"] == "openmp"]
            assert blas and set(blas) == {1}
            # torch's own OpenMP runtime is loaded with it, so the cap is observable.
            assert openmp and set(openmp) == {2}
    finally:
        torch.set_num_threads(torch_before)
