"""The registered model: everything needed to generate fair synthetic rows, as one MLflow model.

The student encoder alone cannot generate: sampling needs the latent prior fitted on the
student's codes, the teacher's decoder and label head, the codec that turns decoded blocks
back into columns, and the real mix of sensitive groups; transform mode needs the student
as well. So the registered model is an MLflow pyfunc whose artifacts are the very files the
run wrote and hashed (``teacher.safetensors``, ``student.safetensors``, ``prior.safetensors``,
``codec.json``) plus the sensitive groups' counts, not a pickled ``nn.Module``:

- the registry then holds byte-for-byte the weights the manifest lists (same sha256), and
  loading checks those digests before trusting a file;
- safetensors and JSON load without unpickling anything, whatever the registry's source;
- the generation steps stay in fairdistill's versioned code (:mod:`fairdistill.models`), so
  a model loads wherever the fairdistill version named in its requirements is installed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models.model import ModelInfo

from fairdistill.models.architectures import module_from_state
from fairdistill.models.blocks import EncodedTable
from fairdistill.models.checkpoint import file_sha256, load_arrays, load_state
from fairdistill.models.errors import CheckpointError, ConfigError
from fairdistill.models.generation import (
    sample_from_prior,
    transform_rows,
)
from fairdistill.models.modality import codec_from_dict
from fairdistill.models.prior import GaussianMixturePrior

ROWS_COLUMN = "rows"
SEED_COLUMN = "seed"
MIX_COLUMN = "sensitive_mix"
SENSITIVE_GROUPS_FILE = "sensitive_groups.json"
# Logged as code (MLflow's "models from code"): nothing is pickled into the model.
GENERATOR_ENTRY = Path(__file__).with_name("generator_entry.py")


def sensitive_group_counts(sensitive: np.ndarray) -> dict[str, list]:
    """The joint sensitive groups of the training rows and how many rows each has.

    Counts, not rows: drawing from the groups in these proportions is drawing from the
    real joint distribution, and no training row is stored with the model.
    """
    groups, counts = np.unique(np.asarray(sensitive, dtype=np.int64), axis=0, return_counts=True)
    return {"groups": groups.tolist(), "counts": counts.tolist()}


class FairSyntheticGenerator(mlflow.pyfunc.PythonModel):
    """Generate rows (``predict`` on a frame of requests) or transform real rows.

    Input, sample mode: one row per request with the column ``rows`` (how many rows) and,
    optionally, ``seed`` (default 0) and ``sensitive_mix`` (``real`` or ``balanced``);
    the outputs of all requests are concatenated. Input, transform mode: real rows holding
    the dataset's columns, target included; one synthetic row comes back per real row.
    The same request gives the same rows.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        digests: dict[str, str] = (context.model_config or {}).get("sha256", {})
        artifacts = {name: Path(path) for name, path in context.artifacts.items()}
        for name, path in artifacts.items():
            expected = digests.get(name)
            if expected is not None and file_sha256(path) != expected:
                raise CheckpointError(
                    f"The model artifact '{name}' differs from the file the run registered",
                    file=str(path),
                    rule="model-artifact-digest",
                    hint="load the model again from the registry; never edit its files",
                )
        self.codec = codec_from_dict(json.loads(artifacts["codec"].read_text("utf-8")))
        self.teacher = _load_module(artifacts["teacher"])
        self.student = _load_module(artifacts["student"])
        self.prior = None
        if "prior" in artifacts:
            arrays, _ = load_arrays(artifacts["prior"])
            self.prior = GaussianMixturePrior.from_arrays(arrays)
        groups = json.loads(artifacts["sensitive_groups"].read_text("utf-8"))
        self.real_sensitive = np.repeat(
            np.asarray(groups["groups"], dtype=np.int64), groups["counts"], axis=0
        )

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        del context, params
        if self.codec.target_column in model_input.columns:
            return self.transform(pl.from_pandas(model_input)).to_pandas()
        if ROWS_COLUMN not in model_input.columns:
            raise ConfigError(
                f"The request has neither a '{ROWS_COLUMN}' column (to sample rows) nor the "
                f"target column '{self.codec.target_column}' (to transform real rows)",
                rule="generator-input",
                hint=f"send e.g. a frame with {ROWS_COLUMN}=1000 and {SEED_COLUMN}=0",
            )
        frames = [
            self.sample(
                int(request[ROWS_COLUMN]),
                seed=int(request.get(SEED_COLUMN, 0)),
                mix=str(request.get(MIX_COLUMN, "real")),
            )
            for request in model_input.to_dict(orient="records")
        ]
        return pl.concat(frames).to_pandas()

    def sample(self, rows: int, *, seed: int, mix: str = "real") -> pl.DataFrame:
        if self.prior is None:
            raise ConfigError(
                "This model was registered by a transform-mode run and has no latent prior "
                "to sample from",
                rule="generator-input",
                hint="send real rows to transform, or register a run with generate.mode sample",
            )
        sampled = sample_from_prior(
            self.teacher,
            self.prior,
            self.real_sensitive,
            self.codec.sensitive_level_counts,
            rows,
            seed=seed,
            mix=mix,  # type: ignore[arg-type]
        )
        return self.codec.decode(sampled.features, sampled.sensitive, sampled.label)

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        table = self.codec.encode(frame)
        encoded: EncodedTable = transform_rows(
            self.student,  # type: ignore[arg-type]
            self.teacher.decoder,
            self.teacher.labeller(),
            table,
            self.codec.sensitive_level_counts,
            seed=0,
            criterion=self.teacher.criterion,
        )
        return self.codec.decode(encoded.features, encoded.sensitive, encoded.label)


def _load_module(path: Path) -> Any:
    tensors, metadata = load_state(path)
    return module_from_state(metadata["architecture"], tensors).eval()


def log_generator(
    name: str,
    files: dict[str, Path],
    sensitive_groups: dict[str, list],
    *,
    requirements: list[str],
    registered_model_name: str,
) -> ModelInfo:
    """Log the generator to the active run and register it as a new version of the model.

    ``files`` maps teacher, student, codec and (sample mode) prior to the run's files.
    """
    artifacts = {key: str(path) for key, path in files.items()}
    with tempfile.TemporaryDirectory() as scratch:
        groups_file = Path(scratch) / SENSITIVE_GROUPS_FILE
        groups_file.write_text(json.dumps(sensitive_groups), encoding="utf-8")
        artifacts["sensitive_groups"] = str(groups_file)
        digests = {key: file_sha256(path) for key, path in artifacts.items()}
        with _without_signature_note():
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=str(GENERATOR_ENTRY),
                artifacts=artifacts,
                model_config={"sha256": digests},
                # Explicit: inferring them would load and run the model at log time.
                pip_requirements=requirements,
                registered_model_name=registered_model_name,
            )


class _DropSignatureNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to infer model signature: Type hint")


@contextmanager
def _without_signature_note() -> Iterator[None]:
    """MLflow warns that it found no signature; none fits, by design: the generator takes
    either sampling requests or real rows (see :class:`FairSyntheticGenerator`)."""
    note = _DropSignatureNote()
    logger = logging.getLogger("mlflow.pyfunc")
    logger.addFilter(note)
    try:
        yield
    finally:
        logger.removeFilter(note)
