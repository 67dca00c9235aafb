"""The one typed configuration of a run, validated before any work starts.

A YAML file can hold every field; CLI options override it (``flows/config.py`` reads both);
the Prefect flow takes the resulting :class:`RunConfig` as its parameter, so the Prefect UI
renders it as a form and refuses bad values before a stage runs. The types live here, at
the bottom of the house, so every layer imports them downward; each stage is handed only
the part it reads, so its cache key covers nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fairdistill.data import BUNDLED_DATASETS, bundled_run_defaults
from fairdistill.models.gates import GateConfig
from fairdistill.models.inputs import SEPARATOR_DESCRIPTION, InputFiles, resolve_input
from fairdistill.models.student import StudentConfig
from fairdistill.models.teacher import TeacherConfig

# Generating more rows than this in one run is almost certainly a typo (1e9 rows of
# Adult's width is ~100 GB); refusing early beats running out of memory late. The validate
# stage also checks the requested rows against the memory actually available.
MAX_GENERATED_ROWS = 50_000_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PrepareConfig(_Frozen):
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)


class GenerateConfig(_Frozen):
    rows: int | None = Field(
        default=None,
        ge=1,
        le=MAX_GENERATED_ROWS,
        description="Rows to generate; default: as many as the real train split.",
    )
    mode: Literal["sample", "transform"] = Field(
        default="sample",
        description="sample: draw latents from the fitted prior; transform: one synthetic "
        "row per real training row (encode, then decode).",
    )
    sensitive_mix: Literal["real", "balanced"] = Field(
        default="real",
        description="real: sensitive groups in their real proportions; balanced: equal counts.",
    )
    prior_components: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Components of the latent prior; default: scaled to the rows (one per 50 "
        "training rows, at most 1,000), fitted by k-means, or 10 fitted by EM when the label "
        "is decoded from the latent (images, teacher.label.enabled false); a number: that "
        "many, fitted by EM.",
    )


class EvaluateConfig(_Frozen):
    families: tuple[Literal["gradient_boosting", "logistic_regression"], ...] = (
        "gradient_boosting",
        "logistic_regression",
    )
    max_rows: int = Field(
        default=5000, ge=100, description="Rows per side for the nearest-neighbour metrics."
    )


class RunConfig(_Frozen):
    dataset: str | None = Field(
        default="adult", description="A bundled dataset name; ignored when data is given."
    )
    data: str | None = Field(default=None, description="Path of the user's CSV or parquet file.")
    spec: str | None = Field(default=None, description="Path of the dataset spec (YAML).")
    separator: str | None = Field(
        default=None, min_length=1, max_length=1, description=SEPARATOR_DESCRIPTION
    )
    output: str | None = Field(
        default=None, description="Folder that receives one subfolder per published run."
    )
    run_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Name of the published run folder; default: dataset, UTC time and run id.",
    )
    overwrite: bool = Field(
        default=False, description="Replace a published run folder of the same name."
    )
    reuse_stages: bool = Field(
        default=True,
        description="Reuse the results of stages that already completed with the same input, "
        "config and code (a rerun after a failure starts at the failed stage, and its training "
        "continues from the last epoch checkpoint); false recomputes everything from scratch.",
    )
    register_model: bool = Field(
        default=True,
        description="On a passed gate, register the generator and point the 'candidate' alias "
        "at it.",
    )
    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    experiment: str = "fairdistill"
    prepare: PrepareConfig = PrepareConfig()
    teacher: TeacherConfig = TeacherConfig()
    student: StudentConfig = StudentConfig()
    generate: GenerateConfig = GenerateConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gates: GateConfig = GateConfig()

    @model_validator(mode="before")
    @classmethod
    def _bundled_dataset_defaults(cls, raw: Any) -> Any:
        """A bundled dataset's recommended settings (its ``run.yaml``) fill what is unset.

        The images of ``coloured-digits``, for one, need more and smaller training batches
        than a table; a setting given in a config file or on the command line still wins.
        """
        if not isinstance(raw, dict) or raw.get("data") is not None:
            return raw
        name = raw.get("dataset", cls.model_fields["dataset"].default)
        return fill_unset(bundled_run_defaults(name), raw)

    @model_validator(mode="after")
    def _data_and_spec_together(self) -> RunConfig:
        if self.data is not None and self.spec is None:
            raise ValueError("a data file needs its spec: give spec as well as data")
        if self.data is None and self.dataset is None:
            raise ValueError("name a bundled dataset or give data and spec")
        if self.data is None and self.dataset not in BUNDLED_DATASETS:
            raise ValueError(
                f"there is no bundled dataset named '{self.dataset}' "
                f"(available: {', '.join(BUNDLED_DATASETS)}); for your own table give data "
                "and spec"
            )
        return self

    @property
    def dataset_label(self) -> str:
        return Path(self.data).stem if self.data else str(self.dataset)

    @property
    def input_files(self) -> InputFiles:
        return resolve_input(self.dataset, self.data, self.spec, self.separator)

    @property
    def rows_to_sample(self) -> int | None:
        """Rows the generate stage draws from the prior, when the run says how many."""
        return self.generate.rows if self.generate.mode == "sample" else None


def fill_unset(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with every key it lacks taken from ``defaults``, nested mappings merged."""
    filled = dict(given)
    for key, value in defaults.items():
        if key not in filled:
            filled[key] = value
        elif isinstance(value, dict) and isinstance(filled[key], dict):
            filled[key] = fill_unset(value, filled[key])
    return filled


__all__ = [
    "MAX_GENERATED_ROWS",
    "EvaluateConfig",
    "GenerateConfig",
    "InputFiles",
    "PrepareConfig",
    "RunConfig",
    "fill_unset",
    "resolve_input",
]
