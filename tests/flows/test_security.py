"""Nothing loaded runs code, nothing recorded holds a credential, input paths are checked."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch

from fairdistill.models.config import RunConfig
from fairdistill.models.errors import CheckpointError, DataReadError
from fairdistill.models.networks import MLPEncoder
from fairdistill.models.tables import read_table
from fairdistill.tasks.services.model_store import load_module, save_module
from fairdistill.tasks.services.storage import Ref
from fairdistill.tasks.services.tracking import StageContext
from fairdistill.tasks.services.uris import redact_uri


@pytest.fixture
def stored_teacher(tmp_path: Path) -> Ref:
    """An encoder saved into a run's work folder the way train_teacher saves it."""
    torch.manual_seed(0)
    context = StageContext(
        tracking_uri="sqlite:///unused.db",
        experiment_id="0",
        parent_run_id="run",
        work_uri=str(tmp_path / "work" / "run"),
        checkpoint_root=str(tmp_path / "checkpoints"),
    )
    return save_module(context, "teacher", MLPEncoder(6, 2, [8], 3))


def test_a_stored_model_loads_back(stored_teacher: Ref) -> None:
    module = load_module(stored_teacher)
    assert isinstance(module, MLPEncoder) and module.latent_dim == 3


def test_a_tampered_model_in_the_work_folder_is_refused(stored_teacher: Ref) -> None:
    payload = bytearray(stored_teacher.path.read_bytes())
    payload[-1] ^= 0x01  # one bit of one weight
    stored_teacher.path.write_bytes(bytes(payload))
    with pytest.raises(CheckpointError) as caught:
        load_module(stored_teacher)
    error = caught.value
    assert error.rule == "checkpoint-sha256" and error.file == str(stored_teacher.path)
    assert "changed since it was written" in str(error) and error.hint


def test_a_pickle_in_place_of_a_model_is_never_unpickled(
    stored_teacher: Ref, tmp_path: Path
) -> None:
    """Even with a matching digest (an attacker who rewrote the reference too)."""
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(_WritesMarker(str(marker)))
    stored_teacher.path.write_bytes(payload)
    forged = Ref(uri=stored_teacher.uri, sha256=_sha256(payload))
    with pytest.raises(CheckpointError) as caught:
        load_module(forged)
    assert caught.value.rule == "checkpoint-format"
    assert not marker.exists()


class _WritesMarker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # what unpickling would run
        return (Path.write_text, (Path(self.path), "unpickled"))


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://alice:s3cret@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("https://token123@mlflow.example/api", "https://***@mlflow.example/api"),
        ("mysql://db/mlflow?user=u&password=pw", "mysql://db/mlflow?user=u&password=***"),
        ("s3://b/key?X-Amz-Signature=abc&region=eu", "s3://b/key?X-Amz-Signature=***&region=eu"),
        ("sqlite:////home/me/.fairdistill/mlflow.db", "sqlite:////home/me/.fairdistill/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),
    ],
)
def test_uris_are_recorded_without_credentials(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_input_paths_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = RunConfig(data="data/../loans.csv", spec="./spec.yaml")
    data, spec = config.input_files.data_path, config.input_files.spec_path
    assert data == tmp_path.resolve() / "loans.csv" and spec == tmp_path.resolve() / "spec.yaml"


def test_a_pipe_named_like_a_table_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "loans.csv"
    os.mkfifo(pipe)
    with pytest.raises(DataReadError) as caught:
        read_table(pipe)
    assert caught.value.rule == "input-is-file"
