"""Everything a run report shows, as plain values: numbers, strings, lists and dicts.

A :class:`ReportData` is gathered once per run, stored as JSON beside the report, and rendered
by :mod:`fairdistill.models.reporting.html`; rendering an old run again needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from fairdistill.models.gates import GATE_MEANINGS, needs_text

# Raised when a stored report no longer matches these classes; older files are refused
# rather than half-rendered.
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict as the report shows it; a gate relative to real data also holds
    its baseline (what real held-out rows score) and the allowance above it."""

    gate: str
    metric: str
    comparison: str
    threshold: float
    value: float
    passed: bool
    margin: float
    baseline_metric: str | None = None
    baseline: float | None = None
    allowance: float | None = None

    @property
    def needs(self) -> str:
        return needs_text(
            self.comparison, self.threshold, self.baseline_metric, self.baseline, self.allowance
        )

    @property
    def meaning(self) -> str:
        return GATE_MEANINGS.get(self.gate, "")


@dataclass(frozen=True)
class Headline:
    """One of the numbers read first: the real-data reference beside the synthetic result."""

    topic: str
    metric: str
    reference: float
    synthetic: float
    reference_label: str
    synthetic_label: str
    meaning: str


@dataclass(frozen=True)
class GroupFairness:
    """One sensitive attribute (or the intersection of several), group by group.

    ``label_rate`` and ``rows`` are keyed ``real``/``synthetic`` then group;
    ``prediction_rate`` and ``ratios`` are keyed by protocol (``trtr``, ``tstr``, ``tsts``),
    then group or metric name.
    """

    attribute: str
    definition: str
    groups: list[str]
    label_rate: dict[str, dict[str, float]]
    rows: dict[str, dict[str, int]]
    prediction_rate: dict[str, dict[str, float]]
    ratios: dict[str, dict[str, float]]


@dataclass(frozen=True)
class MarginalHistogram:
    """A column's distribution, real and synthetic; ``labels`` are levels or bin edges."""

    column: str
    kind: str
    distance_name: str
    distance: float
    labels: list[str]
    edges: list[float]
    real: list[float]
    synthetic: list[float]
    missing: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Association:
    columns: list[str]
    real: list[list[float]]
    synthetic: list[list[float]]
    mean_absolute_difference: float


@dataclass(frozen=True)
class DistanceHistogram:
    edges: list[float]
    synthetic: list[float]
    holdout: list[float]


@dataclass(frozen=True)
class LatentProjection:
    """A sample of a model's latent codes projected on two axes, with the rows' groups."""

    points: list[list[float]]
    explained_variance: list[float]
    groups: dict[str, list[str]]


@dataclass(frozen=True)
class ModelSummary:
    name: str
    role: str
    parameters: int
    encoder_parameters: int
    history: dict[str, list[float]]
    probe_auroc: dict[str, float]
    latents: LatentProjection | None
    mlflow_run_id: str | None


@dataclass(frozen=True)
class Provenance:
    input_path: str
    input_sha256: str
    input_rows: int
    train_rows: int
    test_rows: int
    output_sha256: str
    output_rows: int
    published_folder: str | None
    spec: dict[str, Any]
    config: dict[str, Any]
    code_version: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    mlflow_run_id: str
    stage_runs: dict[str, str]
    reused_stages: list[str]
    flow_run_id: str | None


@dataclass(frozen=True)
class SampleGrid:
    """Example images of an image dataset, drawn by the generate stage (PNG, base64)."""

    name: str
    caption: str
    png_base64: str


@dataclass(frozen=True)
class ReportData:
    run_name: str
    dataset: str
    created_at: str
    gates: list[GateResult]
    headlines: list[Headline]
    fairness_classifier: str
    fairness: list[GroupFairness]
    utility: dict[str, dict[str, dict[str, float]]]
    fidelity: dict[str, float]
    marginals: list[MarginalHistogram]
    marginal_selection: str
    association: Association
    privacy: dict[str, float]
    distances: DistanceHistogram
    models: list[ModelSummary]
    provenance: Provenance
    samples: list[SampleGrid] = field(default_factory=list)
    # What the real held-out rows score on the same figures (NaN where not computed).
    fidelity_reference: dict[str, float] = field(default_factory=dict)
    privacy_reference: dict[str, float] = field(default_factory=dict)
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        """True when every gate held (or none is configured): the dataset is published."""
        return all(gate.passed for gate in self.gates)

    def to_json(self) -> str:
        # NaN stays NaN (Python's json writes and reads it), so "not computed" survives;
        # keys keep their order, which is the order the report shows them in.
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ReportData:
        payload = json.loads(text)
        version = payload.get("schema_version") if isinstance(payload, dict) else None
        if version != REPORT_SCHEMA_VERSION:
            raise ValueError(
                f"report data of schema version {version}; this fairdistill reads version "
                f"{REPORT_SCHEMA_VERSION}"
            )
        try:
            return TypeAdapter(cls).validate_python(payload)
        except ValidationError as error:
            raise ValueError(f"report data does not match its schema: {error}") from error
