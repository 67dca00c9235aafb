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
from fairdistill.models.conditional import (
    ConditionalGenerator,
    ConditionalSample,
    ConditionalSettings,
    sample_conditional,
)
from fairdistill.models.conditions import bind_conditions
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
# A request's conditions: a list of condition strings (or one string), as a column or a param.
WHERE = "where"
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
    optionally, ``seed`` (default 0), ``sensitive_mix`` (``real`` or ``balanced``) and
    ``where`` (conditions every row must meet, e.g. ``["age >= 60"]``; also accepted as
    the ``where`` param, for every request); the outputs of all requests are concatenated.
    Input, transform mode: real rows holding the dataset's columns, target included; one
    synthetic row comes back per real row.
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
        del context
        where = (params or {}).get(WHERE)
        if self.codec.target_column in model_input.columns:
            return self.transform(pl.from_pandas(model_input)).to_pandas()
        if ROWS_COLUMN not in model_input.columns:
            raise ConfigError(
                f"The request has neither a '{ROWS_COLUMN}' column (to sample rows) nor the "
                f"target column '{self.codec.target_column}' (to transform real rows)",
                rule="generator-input",
                hint=f"send e.g. a frame with {ROWS_COLUMN}=1000 and {SEED_COLUMN}=0",
            )
        frames = [self._answer(request, where) for request in model_input.to_dict(orient="records")]
        return pl.concat(frames).to_pandas()

    def _answer(self, request: dict[str, Any], where: Any) -> pl.DataFrame:
        rows = int(request[ROWS_COLUMN])
        seed = int(request.get(SEED_COLUMN, 0))
        mix = str(request.get(MIX_COLUMN, "real"))
        conditions = _condition_list(request.get(WHERE, where))
        if conditions:
            return self.sample_where(rows, conditions, seed=seed, mix=mix).frame
        return self.sample(rows, seed=seed, mix=mix)

    def sample(self, rows: int, *, seed: int, mix: str = "real") -> pl.DataFrame:
        prior = self._require_prior()
        sampled = sample_from_prior(
            self.teacher,
            prior,
            self.real_sensitive,
            self.codec.sensitive_level_counts,
            rows,
            seed=seed,
            mix=mix,  # type: ignore[arg-type]
        )
        return self.decode_rows(sampled)

    def sample_where(
        self,
        rows: int,
        where: list[str],
        *,
        seed: int,
        mix: str = "real",
        ignored_columns: tuple[str, ...] = (),
        settings: ConditionalSettings | None = None,
    ) -> ConditionalSample:
        """Exactly ``rows`` rows meeting every condition of ``where``, groups in ``mix``.

        See :mod:`fairdistill.models.conditional` for how; a condition that cannot be met
        raises :class:`~fairdistill.models.conditions.ConditionError` naming it.
        """
        conditions = bind_conditions(where, self.codec, ignored_columns=ignored_columns)
        generator = ConditionalGenerator(
            teacher=self.teacher,
            prior=self._require_prior(),
            codec=self.codec,
            real_sensitive=self.real_sensitive,
            decode=self.decode_rows,
        )
        return sample_conditional(
            generator,
            conditions,
            rows,
            seed=seed,
            mix=mix,  # type: ignore[arg-type]
            settings=settings,
        )

    def decode_rows(self, table: EncodedTable) -> pl.DataFrame:
        """Decoded blocks as the published columns: what every sampled row goes through."""
        return self.codec.decode(table.features, table.sensitive, table.label)

    def _require_prior(self) -> GaussianMixturePrior:
        if self.prior is None:
            raise ConfigError(
                "This model was registered by a transform-mode run and has no latent prior "
                "to sample from",
                rule="generator-input",
                hint="send real rows to transform, or register a run with generate.mode sample",
            )
        return self.prior

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


def _condition_list(where: Any) -> list[str]:
    """A request's conditions as a list of strings (none: an empty list)."""
    if where is None or (isinstance(where, float) and np.isnan(where)):
        return []
    if isinstance(where, str):
        return [where]
    return [str(condition) for condition in where]


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
