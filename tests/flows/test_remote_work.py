"""The whole flow with its work and checkpoint roots on an fsspec URI, not a local folder.

The work root is fsspec's in-process ``memory://`` filesystem, which the stages share
because the default task runner runs them in threads of this process. It stands for the
object store (``s3://``, ``gs://``) a team shares between machines: a stage that still
opened a local path would fail here, or leave a file in the local work folder.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from fairdistill.flows.regenerate import RunSummary, regenerate_fair_dataset
from fairdistill.flows.settings import load_settings
from fairdistill.models.config import RunConfig
from fairdistill.tasks.services.concurrency import GPU_TAG
from fairdistill.tasks.services.storage import sha256_bytes

pytestmark = pytest.mark.slow

STAGES = {"validate", "prepare", "train_teacher", "distill_student", "generate", "evaluate"}
RUN_NAME = "remote-work"


@pytest.fixture(scope="module")
def work_root() -> Iterator[str]:
    root = f"memory://fairdistill-{uuid.uuid4().hex[:8]}/work"
    yield root
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(root):
        filesystem.rm(root, recursive=True)


def local_state(home: Path) -> dict[str, list[str]]:
    """What the local work and checkpoint folders hold, and any folder a URI became."""
    return {
        name: sorted(str(p.relative_to(home)) for p in (home / name).rglob("*"))
        for name in ("work", "checkpoints")
    } | {"cwd": sorted(str(p) for p in Path.cwd().glob("memory*"))}


@pytest.fixture(scope="module")
def remote_run(
    work_root: str,
    prefect_api_url: str,
    sample_input: dict,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """One run on the shared Prefect server, its gpu limit reset before and after."""
    home = load_settings().home
    before = local_state(home)
    output = tmp_path_factory.mktemp("published")
    config = RunConfig.model_validate(
        {
            **sample_input,
            "output": str(output),
            "run_name": RUN_NAME,
            # Computed here, never a cached result pointing at another run's files.
            "reuse_stages": False,
            "teacher": {"epochs": 2},
            "student": {"epochs": 2},
            "evaluate": {"families": ["logistic_regression"], "max_rows": 500},
            "gates": {
                "min_utility_ratio": None,
                "max_exact_copy_excess": None,
                "max_dcr_share_below_holdout_p5": None,
            },
        }
    )
    with (
        pytest.MonkeyPatch.context() as environment,
        temporary_settings({PREFECT_API_URL: prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        environment.setenv("FAIRDISTILL_WORK_URI", work_root)
        environment.delenv("FAIRDISTILL_CHECKPOINT_URI", raising=False)
        environment.delenv("FAIRDISTILL_GPU_SLOTS", raising=False)  # the default: 1
        delete_gpu_limit(client)
        try:
            summary = regenerate_fair_dataset(config)
            yield {
                "summary": summary,
                "task_runs": task_run_states(client, summary),
                "gpu_slots": client.read_concurrency_limit_by_tag(GPU_TAG).concurrency_limit,
                "before": before,
                "after": local_state(home),
            }
        finally:
            delete_gpu_limit(client)


def delete_gpu_limit(client: SyncPrefectClient) -> None:
    if any(limit.tag == GPU_TAG for limit in client.read_concurrency_limits(limit=200, offset=0)):
        client.delete_concurrency_limit_by_tag(GPU_TAG)


def task_run_states(client: SyncPrefectClient, summary: RunSummary) -> dict[str, str]:
    runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.flow_run_id]))
    )
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs if run.state}


def test_every_stage_completed(remote_run: dict[str, Any]) -> None:
    states = remote_run["task_runs"]
    assert set(states) == STAGES | {"publish"}
    assert set(states.values()) == {"Completed"}


def test_nothing_was_written_to_the_local_work_folders(remote_run: dict[str, Any]) -> None:
    assert remote_run["after"] == remote_run["before"]


def test_the_run_files_are_in_the_work_root_with_their_recorded_digests(
    remote_run: dict[str, Any], work_root: str
) -> None:
    summary: RunSummary = remote_run["summary"]
    manifest = json.loads(Path(summary.published.manifest).read_text())
    filesystem = fsspec.filesystem("memory")
    run_folder = f"{work_root}/{RUN_NAME}"

    def digest(name: str) -> str:
        return sha256_bytes(filesystem.cat_file(f"{run_folder}/{name}"))

    for model in ("teacher", "student"):
        assert digest(f"{model}.safetensors") == manifest["models"][model]["weights_sha256"]
    assert digest("synthetic.parquet") == manifest["output"]["sha256"] == summary.published.sha256
    assert digest("validation.json") == manifest["validation"]["gx_result_sha256"]
    stored = {path.rsplit("/", 1)[-1] for path in filesystem.find(run_folder)}
    assert {"input.parquet", "train.parquet", "test.parquet", "codec.json"} <= stored
    # Training cleared its epoch checkpoints, kept beside the work files.
    assert not filesystem.find(f"{work_root}/.checkpoints")


def test_the_dataset_is_published(remote_run: dict[str, Any]) -> None:
    summary: RunSummary = remote_run["summary"]
    data = Path(summary.published.data)
    assert data.is_file() and sha256_bytes(data.read_bytes()) == summary.published.sha256
    assert summary.published.registry is not None


def test_the_run_ensured_the_gpu_tag_limit(remote_run: dict[str, Any]) -> None:
    assert remote_run["gpu_slots"] == 1
