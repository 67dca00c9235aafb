"""Where the work files, checkpoints and GPU slots come from: the environment, or defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairdistill.flows.settings import load_settings
from fairdistill.models.errors import ConfigError

VARIABLES = (
    "FAIRDISTILL_WORK_URI",
    "FAIRDISTILL_CHECKPOINT_URI",
    "FAIRDISTILL_GPU_SLOTS",
    "FAIRDISTILL_TORCH_THREADS",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAIRDISTILL_HOME", str(tmp_path))
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path.resolve()


def test_by_default_everything_stays_in_the_home_folder(home: Path) -> None:
    settings = load_settings()
    assert settings.work_uri == str(home / "work") == str(settings.work_root)
    assert settings.checkpoint_uri == str(home / "checkpoints")
    assert settings.gpu_slots == 1
    assert settings.torch_threads == 1


def test_a_work_uri_takes_the_checkpoints_along(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRDISTILL_WORK_URI", "s3://team-bucket/fairdistill/work/")
    settings = load_settings()
    assert settings.work_uri == "s3://team-bucket/fairdistill/work"
    assert settings.checkpoint_uri == "s3://team-bucket/fairdistill/work/.checkpoints"
    assert settings.work_root == home / "work"  # the local default, now unused


def test_checkpoints_can_live_elsewhere(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRDISTILL_WORK_URI", "gs://bucket/work")
    monkeypatch.setenv("FAIRDISTILL_CHECKPOINT_URI", "/mnt/fast/checkpoints")
    assert load_settings().checkpoint_uri == "/mnt/fast/checkpoints"


@pytest.mark.parametrize(("value", "slots"), [("4", 4), ("0", 0), ("-2", 0)])
def test_gpu_slots_come_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str, slots: int
) -> None:
    monkeypatch.setenv("FAIRDISTILL_GPU_SLOTS", value)
    assert load_settings().gpu_slots == slots


@pytest.mark.parametrize(("value", "threads"), [("2", 2), (" 4 ", 4), ("0", 1), ("", 1)])
def test_stage_threads_come_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str, threads: int
) -> None:
    monkeypatch.setenv("FAIRDISTILL_TORCH_THREADS", value)
    assert load_settings().torch_threads == threads


@pytest.mark.parametrize("name", ["FAIRDISTILL_TORCH_THREADS", "FAIRDISTILL_GPU_SLOTS"])
def test_a_number_variable_that_is_not_a_number_is_refused_by_name(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "two")
    with pytest.raises(ConfigError, match=f"{name} is 'two', not a whole number") as raised:
        load_settings()
    assert raised.value.rule == name
