"""Stage cache keys: stable across runs, sensitive to what changes a result."""

from __future__ import annotations

from fairdistill.flows.config import RunConfig
from fairdistill.tasks.caching import stage_cache_key, stage_key
from fairdistill.tasks.storage import Ref
from fairdistill.tasks.tracking import StageContext


def context(run: str) -> StageContext:
    return StageContext(
        tracking_uri="sqlite:///x.db",
        experiment_id="1",
        parent_run_id=run,
        work_uri=f"/work/{run}",
        checkpoint_root="/checkpoints",
    )


def test_key_ignores_run_identity_and_file_locations() -> None:
    first = stage_key(
        "prepare",
        {
            "config": RunConfig(run_name="a"),
            "context": context("a"),
            "table": Ref(uri="/work/a/input.parquet", sha256="abc"),
        },
    )
    second = stage_key(
        "prepare",
        {
            "config": RunConfig(run_name="b", output="/elsewhere"),
            "context": context("b"),
            "table": Ref(uri="/work/b/input.parquet", sha256="abc"),
        },
    )
    assert first == second


def test_key_changes_with_content_config_and_stage() -> None:
    base = {"config": RunConfig(), "table": Ref(uri="/a", sha256="abc")}
    key = stage_key("prepare", base)
    assert stage_key("prepare", {**base, "table": Ref(uri="/a", sha256="abd")}) != key
    assert stage_key("prepare", {**base, "config": RunConfig(seed=1)}) != key
    teacher = RunConfig.model_validate({"teacher": {"beta": 0.0}})
    assert stage_key("prepare", {**base, "config": teacher}) != key
    assert stage_key("generate", base) != key


def test_fresh_runs_opt_out_of_the_cache() -> None:
    class Task:
        name = "prepare"

    class Context:
        task = Task()

    assert stage_cache_key(Context(), {"config": RunConfig(reuse_stages=False)}) is None
    assert stage_cache_key(Context(), {"config": RunConfig()}) is not None
