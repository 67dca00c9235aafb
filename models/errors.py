"""Errors written for the person who has to fix their data or their configuration."""

from __future__ import annotations


class FairdistillError(Exception):
    """Base class for every error fairdistill reports to a user.

    Each error names where the problem is (file, column), which rule it broke and what
    to do about it, so the CLI can print one clear sentence instead of a traceback.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rule: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.column = column
        self.rule = rule
        self.hint = hint

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"file {self.file}")
        if self.column:
            parts.append(f"column '{self.column}'")
        if self.rule:
            parts.append(f"rule {self.rule}")
        where = f" [{', '.join(parts)}]" if parts else ""
        hint = f" What to do: {self.hint}" if self.hint else ""
        return f"{self.message}{where}.{hint}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "file": self.file,
            "column": self.column,
            "rule": self.rule,
            "hint": self.hint,
        }


class SpecError(FairdistillError):
    """The dataset spec is missing, malformed, or contradicts the data."""


class ConfigError(FairdistillError):
    """A run option or config file value is invalid."""


class DataReadError(FairdistillError):
    """The input file cannot be read as a table."""


class DataValidationError(FairdistillError):
    """The data breaks an expectation of the validation suite."""


class OutputError(FairdistillError):
    """The output location cannot be written safely."""


class QualityGateError(FairdistillError):
    """The synthetic dataset missed a quality gate; nothing was published."""

    exit_code = 3


class CheckpointError(FairdistillError):
    """A stored model or checkpoint failed its integrity check."""


class RegistryError(FairdistillError):
    """A model registry request names a model, version or alias that cannot be used."""


class ConstraintError(FairdistillError):
    """Generated rows could not be made to obey the spec's constraints."""
