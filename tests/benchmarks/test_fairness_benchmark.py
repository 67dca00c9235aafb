"""The fairness benchmark runner: every row and column, the result file, and the mechanisms it
measures (the fairness penalty, the s-blind student, sampling and transform modes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fairdistill.models.blocks import EncodedTable, FeatureBlock
from fairdistill.models.student import StudentConfig, distill_student
from fairdistill.models.teacher import (
    TeacherConfig,
    encode_latents,
    probe_sensitive_auroc,
    train_teacher,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    # benchmarks/ is a folder of scripts run from the repository root, not an installed package.
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import fairness  # noqa: E402
from benchmarks.datasets import BENCHMARK_CASES, load_case  # noqa: E402

LEVELS = [2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("benchmark")
    results = fairness.main(
        [
            "--quick",
            "--seeds",
            "0",
            "--output-dir",
            str(folder),
            "--results-md",
            str(folder / "RESULTS.md"),
        ]
    )
    return results, folder


def test_quick_run_produces_every_row_and_metric_column(quick_run) -> None:
    results, _ = quick_run
    run = results["cases"]["adult_sex"]["runs"][0]
    assert set(run["rows"]) == set(fairness.ROWS)
    for name, metrics in run["rows"].items():
        for columns in fairness.column_groups("sex").values():
            for column in columns:
                trained_only = column.metric.startswith(("probe_auroc.", "parameters.", "seconds."))
                untrained = name in ("real", "frontier", "frontier_eo")
                if untrained and trained_only and column.metric != "seconds.evaluate":
                    continue
                assert column.metric in metrics, (name, column.metric)
    assert run["train_rows"] + run["test_rows"] == fairness.QUICK_ROWS


def test_quick_run_writes_the_raw_json_and_its_markdown_section(quick_run) -> None:
    results, folder = quick_run
    stored = json.loads((folder / "fairness.json").read_text())
    assert stored["command"].startswith("python -m benchmarks.fairness --quick")
    assert stored["cases"]["adult_sex"]["runs"][0]["rows"].keys() == set(fairness.ROWS)
    markdown = (folder / "RESULTS.md").read_text()
    assert fairness.SECTION_HEADING in markdown
    for title in fairness.column_groups("sex"):
        assert f"#### {title}" in markdown
    assert "| student |" in markdown and "±" in markdown
    assert results["machine"]["cores"]


def test_the_section_is_replaced_and_other_sections_kept(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Speed\n\nfast\n")
    fairness.write_section(f"{fairness.SECTION_HEADING}\n\nfirst\n", path)
    fairness.write_section(f"{fairness.SECTION_HEADING}\n\nsecond\n", path)
    text = path.read_text()
    assert "## Speed\n\nfast" in text
    assert "second" in text and "first" not in text
    assert text.count(fairness.SECTION_HEADING) == 1


def test_summary_is_mean_and_sample_standard_deviation_over_seeds() -> None:
    runs = [{"rows": {"student": {"m": value}}} for value in (1.0, 2.0, 3.0)]
    mean, sd = fairness.summarise(runs)["student"]["m"]
    assert mean == pytest.approx(2.0)
    assert sd == pytest.approx(1.0)


def leaky_table(n: int = 800, seed: int = 0) -> tuple[EncodedTable, list[FeatureBlock]]:
    """s shifts two features; the label needs u, which every feature carries."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    u = rng.normal(size=n)
    features = np.stack(
        [u + 1.5 * s, u - s + 0.3 * rng.normal(size=n), u + 0.5 * rng.normal(size=n)], axis=1
    ).astype(np.float32)
    label = (u + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    blocks = [FeatureBlock(f"x{i}", "continuous", i, 1) for i in range(3)]
    return EncodedTable(features, s[:, None].astype(np.int64), label), blocks


def _probe(encoder: torch.nn.Module, table: EncodedTable) -> float:
    latents = encode_latents(encoder, table, LEVELS)  # type: ignore[arg-type]
    return probe_sensitive_auroc(latents, table.sensitive, 0)["attribute_0"]


TEACHER = TeacherConfig(hidden=(32, 32), latent_dim=4, epochs=10, batch_size=128)
STUDENT = StudentConfig(hidden=(8,), epochs=10, batch_size=128, learning_rate=1e-2)


def test_fairness_penalty_lowers_what_teacher_and_student_latents_reveal() -> None:
    table, blocks = leaky_table()
    probes = {}
    for beta in (0.0, 10.0):
        teacher_config = TEACHER.model_copy(update={"beta": beta})
        student_config = STUDENT.model_copy(update={"fairness_weight": beta})
        teacher, _ = train_teacher(table, blocks, LEVELS, teacher_config, seed=0)
        student, _ = distill_student(teacher, table, blocks, LEVELS, student_config, seed=0)
        probes[beta] = (_probe(teacher.encoder, table), _probe(student, table))
    assert probes[10.0][0] < probes[0.0][0] - 0.1
    assert probes[10.0][1] < probes[0.0][1] - 0.1


def test_the_students_own_penalty_stops_it_leaking_what_the_teacher_hid() -> None:
    table, blocks = leaky_table()
    teacher_config = TEACHER.model_copy(update={"beta": 10.0})
    teacher, _ = train_teacher(table, blocks, LEVELS, teacher_config, seed=0)
    unpenalised = STUDENT.model_copy(update={"fairness_weight": 0.0})
    leaky, _ = distill_student(teacher, table, blocks, LEVELS, unpenalised, seed=0)
    fair, _ = distill_student(teacher, table, blocks, LEVELS, STUDENT, seed=0)
    assert STUDENT.fairness_weight > 0
    assert _probe(fair, table) < _probe(leaky, table) - 0.1
    assert _probe(fair, table) < _probe(teacher.encoder, table) + 0.1


def test_a_student_blind_to_s_gives_the_same_code_whatever_s_is_passed() -> None:
    table, blocks = leaky_table()
    teacher, _ = train_teacher(table, blocks, LEVELS, TEACHER, seed=0)
    config = STUDENT.model_copy(update={"sensitive_input": False, "epochs": 2})
    blind, _ = distill_student(teacher, table, blocks, LEVELS, config, seed=0)
    flipped = EncodedTable(table.features, 1 - table.sensitive, table.label)
    np.testing.assert_array_equal(
        encode_latents(blind, table, LEVELS), encode_latents(blind, flipped, LEVELS)
    )
    seeing, _ = distill_student(
        teacher, table, blocks, LEVELS, config.model_copy(update={"sensitive_input": True}), seed=0
    )
    assert not np.array_equal(
        encode_latents(seeing, table, LEVELS), encode_latents(seeing, flipped, LEVELS)
    )


@pytest.fixture(scope="module")
def small_adult() -> tuple[fairness.Split, fairness.TrainedPair]:
    frame, spec = load_case(BENCHMARK_CASES["adult_sex"])
    split = fairness.prepare_split(frame, spec, seed=0, max_rows=400)
    quick = fairness.Settings.quick()
    teacher = quick.teacher.model_copy(update={"criterion": "equalized_odds"})
    return split, fairness.train_pair(split, teacher, quick.student, seed=0)


def test_prior_sampling_produces_valid_rows(small_adult) -> None:
    split, pair = small_adult
    encoded = fairness.sampled_rows(split, pair.teacher, pair.student, seed=0)
    assert len(encoded) == len(split.table)
    assert set(np.unique(encoded.label)) <= {0, 1}
    assert encoded.sensitive.min() >= 0
    assert (encoded.sensitive < np.asarray(split.codec.sensitive_level_counts)).all()
    frame = split.codec.decode(encoded.features, encoded.sensitive, encoded.label)
    assert frame.columns == split.train.columns
    real_levels = set(split.train.get_column("sex").unique())
    assert set(frame.get_column("sex").unique()) <= real_levels


def test_transform_mode_keeps_each_rows_sensitive_values(small_adult) -> None:
    split, pair = small_adult
    encoded = fairness.transformed_rows(split, pair.teacher, pair.student, seed=0)
    np.testing.assert_array_equal(encoded.sensitive, split.table.sensitive)
    assert encoded.features.shape == split.table.features.shape


def test_the_criterion_switch_reaches_the_teacher(small_adult) -> None:
    _, pair = small_adult
    assert pair.teacher.criterion == "equalized_odds"
    assert pair.parameters["student_encoder"] <= 0.25 * pair.parameters["teacher_encoder"]


def test_the_beta_sweep_is_logged_to_mlflow_as_a_curve(tmp_path: Path) -> None:
    import mlflow

    from benchmarks.sweep_tracking import SWEEP_EXPERIMENT
    from fairdistill.flows.settings import load_settings

    arguments = ["--quick", "--seeds", "0", "--sweep-beta", "0,3", "--output-dir", str(tmp_path)]
    fairness.main([*arguments, "--results-md", str(tmp_path / "RESULTS.md")])

    mlflow.set_tracking_uri(load_settings().tracking_uri)
    experiment = mlflow.get_experiment_by_name(SWEEP_EXPERIMENT)
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    parent_id = parent.info.run_id
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent_id]
    assert sorted(float(child.data.params["beta"]) for child in children) == [0.0, 3.0]
    for child in children:
        assert 0.0 <= child.data.metrics["tstr.gradient_boosting.auroc"] <= 1.0
    logged = {item.path for item in mlflow.MlflowClient().list_artifacts(parent_id)}
    assert {"beta_sweep.png", "beta_sweep.md", "beta_sweep.json"} <= logged
    assert parent.data.params["betas"] == "0,3"


def test_one_seed_reports_no_spread_rather_than_zero() -> None:
    mean, sd = fairness.mean_sd([0.8])
    assert mean == pytest.approx(0.8) and np.isnan(sd)
    column = fairness.Column("AUROC", "auroc")
    one = fairness.markdown_table({"student": {"auroc": (mean, sd)}}, [column])
    two = fairness.markdown_table({"student": {"auroc": fairness.mean_sd([0.8, 0.9])}}, [column])
    assert one.splitlines()[-1] == "| student | 0.800 |"
    assert two.splitlines()[-1] == "| student | 0.850 ± 0.071 |"


def _stored_table(command: str, seeds: list[int], settings: dict | None = None) -> dict:
    runs = [{"seed": seed, "train_rows": 8, "test_rows": 2, "rows": {}} for seed in seeds]
    return {
        "command": command,
        "machine": {
            "cpu": "test",
            "cores": "2",
            "python": "3.11",
            "torch": "2",
            "date": f"2026-12-0{seeds[0] % 9 + 1} 00:00 UTC",
            "torch_threads": "1",
        },
        "settings": settings or {"teacher": {"beta": 5.0}},
        "cases": {"adult_sex": {"attribute": "sex", "runs": runs}},
        "seconds": 10.0 * len(seeds),
    }


def test_merged_tables_join_the_seeds_in_order_and_keep_every_command() -> None:
    later = _stored_table("python -m benchmarks.fairness --seeds 4,3", [4, 3])
    earlier = _stored_table("python -m benchmarks.fairness --seeds 0,1", [0, 1])
    merged = fairness.merge_results([later, earlier])
    assert [run["seed"] for run in merged["cases"]["adult_sex"]["runs"]] == [0, 1, 3, 4]
    assert [part["command"] for part in merged["parts"]] == [later["command"], earlier["command"]]
    assert merged["seconds"] == pytest.approx(40.0)
    plain = _stored_table("python -m benchmarks.fairness --cases adult_plain", [0])
    plain["cases"] = {"adult_plain": plain["cases"]["adult_sex"]}
    assert list(fairness.merge_results([plain, earlier])["cases"]) == ["adult_sex", "adult_plain"]
    again = fairness.merge_results([merged, _stored_table("python -m x --seeds 7", [7])])
    assert len(again["parts"]) == 3
    assert [run["seed"] for run in again["cases"]["adult_sex"]["runs"]] == [0, 1, 3, 4, 7]


def test_merging_refuses_a_repeated_seed_or_other_settings() -> None:
    first = _stored_table("a", [0, 1])
    with pytest.raises(ValueError, match=r"seed\(s\) \[1\]"):
        fairness.merge_results([first, _stored_table("b", [1, 2])])
    with pytest.raises(ValueError, match="settings differ"):
        fairness.merge_results([first, _stored_table("c", [2], {"teacher": {"beta": 3.0}})])


def test_the_merge_command_writes_the_joined_table_and_names_each_part(tmp_path: Path) -> None:
    for name, seeds in (("one", [0]), ("two", [1])):
        (tmp_path / name).mkdir()
        table = _stored_table(f"python -m benchmarks.fairness --seeds {seeds[0]}", seeds)
        (tmp_path / name / "fairness.json").write_text(json.dumps(table))
    results_md = tmp_path / "RESULTS.md"
    fairness.main(
        [
            "--merge",
            str(tmp_path / "one"),
            str(tmp_path / "two"),
            "--output-dir",
            str(tmp_path / "merged"),
            "--results-md",
            str(results_md),
        ]
    )
    stored = json.loads((tmp_path / "merged" / "fairness.json").read_text())
    assert [run["seed"] for run in stored["cases"]["adult_sex"]["runs"]] == [0, 1]
    markdown = results_md.read_text()
    assert "`python -m benchmarks.fairness --seeds 0`" in markdown
    assert "`python -m benchmarks.fairness --seeds 1`" in markdown
    assert "(2 seeds: 0, 1;" in markdown
