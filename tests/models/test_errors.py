"""User-facing errors: one sentence that names where, which rule and what to do."""

from __future__ import annotations

import pytest

from fairdistill.models.errors import (
    CheckpointError,
    ConfigError,
    FairdistillError,
    QualityGateError,
    SpecError,
)


def test_the_sentence_names_file_column_rule_and_hint_in_that_order() -> None:
    error = SpecError(
        "The target is missing", file="spec.yaml", column="income", rule="target", hint="add it"
    )
    assert str(error) == (
        "The target is missing [file spec.yaml, column 'income', rule target]. What to do: add it"
    )


def test_a_bare_message_gets_only_its_full_stop() -> None:
    assert str(ConfigError("Bad seed")) == "Bad seed."


def test_as_dict_names_the_error_class_and_keeps_the_empty_parts() -> None:
    assert CheckpointError("Broken", rule="sha256").as_dict() == {
        "error": "CheckpointError",
        "message": "Broken",
        "file": None,
        "column": None,
        "rule": "sha256",
        "hint": None,
    }


@pytest.mark.parametrize(("error", "code"), [(SpecError, 2), (QualityGateError, 3)])
def test_a_missed_gate_exits_apart_from_a_usage_error(
    error: type[FairdistillError], code: int
) -> None:
    assert error("x").exit_code == code
    assert issubclass(error, FairdistillError)
