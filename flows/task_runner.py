"""Where the stages run: in the flow's own process, or on an existing Dask cluster.

The embedded default needs nothing: Prefect's default task runner. To scale out, a team
points the flow at the scheduler of a Dask cluster it already runs; GPU workers of that
cluster are started with a ``GPU`` resource (``dask worker tcp://scheduler:8786
--resources "GPU=1"``), and the stages that need a GPU are submitted inside
:func:`gpu_resources`, so Dask places them only on those workers.

Dask and prefect-dask come with the ``dask`` extra (``pip install 'fairdistill[dask]'``)
and are imported only when a cluster is used.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from fairdistill.models.errors import ConfigError

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

# The resource name GPU workers advertise; Dask matches it by string, so the worker's
# `--resources "GPU=1"` and this annotation must agree exactly.
GPU_RESOURCE = "GPU"


def build_task_runner(address: str | None) -> DaskTaskRunner | None:
    """A task runner on the Dask cluster at ``address``, or None to keep the flow's default.

    None suits ``flow.with_options(task_runner=...)``, which keeps the flow's own runner
    when given None.
    """
    if not address:
        return None
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as error:
        raise ConfigError(
            f"Running on the Dask cluster at {address} needs prefect-dask, which is not installed",
            rule="dask-installed",
            hint="install the dask extra: pip install 'fairdistill[dask]'",
        ) from error
    return DaskTaskRunner(address=address)


def gpu_resources() -> contextlib.AbstractContextManager[object]:
    """Context in which ``task.submit()`` asks Dask for a worker with one GPU.

    Without Dask installed there is no cluster to place work on, so it does nothing.
    """
    try:
        import dask
    except ImportError:
        return contextlib.nullcontext()
    return dask.annotate(resources={GPU_RESOURCE: 1})
