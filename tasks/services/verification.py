"""What every verification of a published folder shares: the result it collects, file
digests, and comparisons of the manifest with what MLflow recorded."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairdistill.models.errors import FairdistillError


class VerificationError(FairdistillError):
    """A published dataset does not match its manifest or its MLflow record."""

    exit_code = 4


@dataclass
class Verification:
    manifest: Path
    checks: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def passed(self, what: str) -> None:
        self.checks.append(what)

    def mismatch(self, what: str) -> None:
        self.mismatches.append(what)

    def check_finished(self, run: Any, label: str) -> None:
        """``run`` (an MLflow run, called ``label`` in the messages) must have FINISHED."""
        status = run.info.status
        if status != "FINISHED":
            self.mismatch(f"{label} {run.info.run_id} is {status}, not FINISHED")
        else:
            self.passed(f"{label} {run.info.run_id} FINISHED")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def differing_metrics(recorded: dict[str, float], manifest: dict[str, float]) -> list[str]:
    """The manifest's metrics that MLflow recorded differently.

    A metric that could not be computed (a ratio with no positive prediction in a group) is
    NaN in the manifest and absent from MLflow, where runs never log a NaN: that agrees.
    """
    differing = []
    for key, value in manifest.items():
        other = recorded.get(key)
        if math.isnan(value):
            if other is not None and not math.isnan(other):
                differing.append(key)
        elif other is None or not math.isclose(other, value, rel_tol=1e-9):
            differing.append(key)
    return differing


def check_recorded_sha(
    recorded: str | None, manifest: dict[str, Any], result: Verification
) -> None:
    """The output sha256 MLflow recorded against the one in the manifest."""
    if recorded != manifest["output"]["sha256"]:
        result.mismatch(
            f"MLflow recorded output sha256 {recorded}, the manifest says "
            f"{manifest['output']['sha256']}"
        )
    else:
        result.passed("the output sha256 matches the MLflow record")
