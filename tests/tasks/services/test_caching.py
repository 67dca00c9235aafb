"""Stage cache keys: stable across runs, sensitive to what changes a result, and covering
only the part of the config the stage is handed."""

from __future__ import annotations

from fairdistill.models.config import PrepareConfig, RunConfig
from fairdistill.tasks.services.caching import stage_cache_key, stage_key
from fairdistill.tasks.services.storage import Ref
from fairdistill.tasks.services.tracking import StageContext


def context(run: str, *, reuse: bool = True) -> StageContext:
    return StageContext(
        tracking_uri="sqlite:///x.db",
        experiment_id="1",
        parent_run_id=run,
        work_uri=f"/work/{run}",
        checkpoint_root="/checkpoints",
        reuse_stages=reuse,
    )


def prepare_key(config: RunConfig, run: str = "a", sha256: str = "abc") -> str:
    """The key of the prepare stage as the flow calls it: its settings, seed and input."""
    table = Ref(uri=f"/work/{run}/input.parquet", sha256=sha256)
    return stage_key(
        "prepare",
        {
            "settings": config.prepare,
            "seed": config.seed,
            "context": context(run),
            "validated": table,
        },
    )


def teacher_key(config: RunConfig) -> str:
    return stage_key(
        "train_teacher",
        {
            "settings": config.teacher,
            "seed": config.seed,
            "device": config.device,
            "context": context("a"),
            "prepared": Ref(uri="/work/a/train.parquet", sha256="abc"),
        },
    )


def test_key_ignores_run_identity_and_file_locations() -> None:
    first = prepare_key(RunConfig(run_name="a"), run="a")
    second = prepare_key(RunConfig(run_name="b", output="/elsewhere"), run="b")
    assert first == second


def test_key_changes_with_content_settings_seed_and_stage() -> None:
    config = RunConfig()
    key = prepare_key(config)
    assert prepare_key(config, sha256="abd") != key
    assert prepare_key(RunConfig(seed=1)) != key
    assert prepare_key(RunConfig(prepare=PrepareConfig(test_fraction=0.3))) != key
    settings = {"settings": config.prepare, "seed": 0, "validated": Ref(uri="/a", sha256="abc")}
    assert stage_key("prepare", settings) != stage_key("generate", settings)


def test_a_new_fairness_weight_changes_the_teacher_key_and_not_the_split_key() -> None:
    base = RunConfig()
    other_beta = RunConfig.model_validate({"teacher": {"beta": 0.0}})
    assert prepare_key(other_beta) == prepare_key(base)
    assert teacher_key(other_beta) != teacher_key(base)


def test_fresh_runs_opt_out_of_the_cache() -> None:
    class Task:
        name = "prepare"

    class Context:
        task = Task()

    settings = {"settings": PrepareConfig(), "seed": 0}
    assert stage_cache_key(Context(), {**settings, "context": context("a", reuse=False)}) is None
    assert stage_cache_key(Context(), {**settings, "context": context("a")}) is not None
