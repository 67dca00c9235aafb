"""The fairness benchmark cases: their specs, where COMPAS is read from, and skipping."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fairdistill.data import bundled_dataset
from fairdistill.models.spec import load_spec
from fairdistill.models.validation import report_to_markdown, validate_frame

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_benchmark_datasets() -> ModuleType:
    """benchmarks/ is a folder of scripts, not an installed package: load the file itself."""
    name = "fairdistill_benchmark_datasets"
    location = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks/datasets.py")
    assert location is not None and location.loader is not None
    module = importlib.util.module_from_spec(location)
    sys.modules[name] = module
    location.loader.exec_module(module)
    return module


datasets = _load_benchmark_datasets()
COMPAS_PRESENT = datasets.COMPAS_DEFAULT_PATH.is_file()
needs_compas = pytest.mark.skipif(
    not COMPAS_PRESENT, reason=f"{datasets.COMPAS_DEFAULT_PATH} is not present"
)
COMPAS_FEATURES = [
    "sex",
    "age",
    "age_cat",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
]


@pytest.fixture
def no_compas_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(datasets.COMPAS_CSV_VARIABLE, raising=False)


def test_the_five_cases_and_what_each_audits(no_compas_variable: None) -> None:
    cases = datasets.benchmark_cases()
    assert list(cases) == ["adult_sex", "adult_race", "adult_plain", "german_sex", "compas_race"]
    assert list(datasets.BENCHMARK_CASES) == list(cases)
    for case in cases.values():
        spec = load_spec(case.spec_path)
        assert spec.name == case.name
        assert spec.sensitive_columns == [case.sensitive]
    privileged = {
        name: load_spec(case.spec_path).sensitive[0].privileged for name, case in cases.items()
    }
    assert privileged["adult_sex"] == ("Male",)
    assert privileged["adult_plain"] == ("Male",)
    assert privileged["adult_race"] == ("White",)
    assert privileged["german_sex"] == ("male",)
    assert "African-American" not in privileged["compas_race"]


def test_bundled_cases_keep_the_bundled_contracts() -> None:
    cases = datasets.benchmark_cases()
    adult = load_spec(bundled_dataset("adult").spec_path)
    german = load_spec(bundled_dataset("german").spec_path)
    assert load_spec(cases["adult_sex"].spec_path).columns == adult.columns
    assert load_spec(cases["german_sex"].spec_path).columns == german.columns
    assert load_spec(cases["german_sex"].spec_path).target == german.target
    race = load_spec(cases["adult_race"].spec_path)
    assert race.target == adult.target
    # race moves from the features to the sensitive attribute, sex the other way
    assert set(race.columns) == set(adult.columns) - {"race"} | {"sex"}


def test_compas_is_read_from_outside_the_repository(no_compas_variable: None) -> None:
    case = datasets.benchmark_cases()["compas_race"]
    assert case.data_path == REPO_ROOT.parent / "shared/datasets/compas/compas-scores-two-years.csv"
    assert not case.data_path.resolve().is_relative_to(REPO_ROOT.resolve())


def test_no_copy_of_compas_lies_in_the_repository() -> None:
    copies = []
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        copies += [Path(folder, name) for name in files if name.startswith("compas-scores")]
    assert copies == []


def test_the_variable_points_to_another_compas_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy = tmp_path / "compas.csv"
    copy.write_text("id\n1\n", encoding="utf-8")
    monkeypatch.setenv(datasets.COMPAS_CSV_VARIABLE, str(copy))
    present, skipped = datasets.available_cases()
    assert present["compas_race"].data_path == copy
    assert skipped == {}


def test_a_missing_compas_file_is_skipped_with_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(datasets.COMPAS_CSV_VARIABLE, str(tmp_path / "absent.csv"))
    present, skipped = datasets.available_cases()
    assert list(present) == ["adult_sex", "adult_race", "adult_plain", "german_sex"]
    message = skipped["compas_race"]
    for needed in ("compas-scores-two-years.csv", "compas-analysis", "FAIRDISTILL_COMPAS_CSV"):
        assert needed in message
    assert str(tmp_path / "absent.csv") in message


@pytest.mark.parametrize("name", ["adult_sex", "adult_race", "adult_plain", "german_sex"])
def test_bundled_cases_load_and_complete(name: str) -> None:
    frame, spec = datasets.load_case(datasets.benchmark_cases()[name])
    assert frame.height >= spec.min_rows
    assert spec.ignored_columns == []
    assert spec.target.column not in spec.feature_columns


def test_the_plain_adult_case_is_derived_with_a_minimal_spec() -> None:
    case = datasets.benchmark_cases()["adult_plain"]
    spec = load_spec(case.spec_path)
    assert spec.columns == {}
    frame, completed = datasets.load_case(case)
    assert frame.shape == (45_222, 14)
    assert "fnlwgt" not in frame.columns and frame.null_count().sum_horizontal().item() == 0
    assert completed.column("age").type == "integer"
    assert completed.column("occupation").type == "categorical"


@needs_compas
def test_compas_spec_keeps_the_chosen_features_and_passes_validation(
    no_compas_variable: None,
) -> None:
    frame, spec = datasets.load_case(datasets.benchmark_cases()["compas_race"])
    assert frame.shape == (7214, 46)
    assert spec.feature_columns == COMPAS_FEATURES
    assert (spec.target.column, spec.target.positive) == ("two_year_recid", "0")
    races = set(frame.get_column("race").unique().to_list())
    assert set(spec.sensitive[0].privileged) == races - {"African-American"}
    # every other column is ignored through the spec, not dropped from the file
    assert len(spec.ignored_columns) == frame.width - len(COMPAS_FEATURES) - 2
    for leak in ("decile_score", "score_text", "is_recid", "event", "end", "c_charge_desc"):
        assert leak in spec.ignored_columns
    report = validate_frame(frame, spec, str(datasets.COMPAS_DEFAULT_PATH))
    assert report.success, report_to_markdown(report)
    assert report.statistics["group_counts"]["race"] == {
        "privileged": 3518,
        "unprivileged": 3696,
    }
