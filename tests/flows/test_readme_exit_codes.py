"""The README's table of exit codes covers every code the commands exit with."""

from __future__ import annotations

import re
from pathlib import Path

from fairdistill.models.errors import FairdistillError, QualityGateError
from fairdistill.tasks.services.audit import VerificationError

README = Path(__file__).resolve().parents[2] / "README.md"


def exit_code_table() -> dict[int, str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("| exit code | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def test_every_exit_code_is_explained() -> None:
    table = exit_code_table()
    assert set(table) == {0, 1, 2, 3, 4}
    assert FairdistillError.exit_code == 2 and QualityGateError.exit_code == 3


def test_verify_and_reproduce_share_exit_code_4() -> None:
    """``verify`` exits 4 on a mismatch; the table says so."""
    assert VerificationError.exit_code == 4
    assert "fairdistill verify" in exit_code_table()[4]
    assert "fairdistill reproduce" in exit_code_table()[4]
