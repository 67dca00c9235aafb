"""fairdistill inspect: summary printed, spec drafted, written, never clobbered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairdistill.flows.inspect import inspect_table
from fairdistill.models.errors import DataReadError, OutputError
from fairdistill.models.spec import complete_spec, load_spec


@pytest.fixture
def loans_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    n = 300
    path = tmp_path / "loans.csv"
    pl.DataFrame(
        {
            "loan_id": rng.permutation(n),
            "sex": rng.choice(["female", "male"], n),
            "income": rng.integers(1_000, 9_000, n),
            "purpose": rng.choice(["car", "house"], n),
            "repaid": rng.choice([0, 1], n),
        }
    ).write_csv(path)
    return path


def test_inspect_prints_a_summary_writes_the_spec_and_returns_it(
    loans_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "specs" / "loans.yaml"
    text = inspect_table(loans_csv, target="repaid", positive="1", sensitive=["sex"], output=output)
    printed = capsys.readouterr().out
    assert printed.startswith(f"{loans_csv}: 300 rows, 5 columns")
    assert "loan_id" in printed and "identifier: 300 distinct values" in printed
    assert f"Wrote the spec to {output}" in printed
    assert output.read_text(encoding="utf-8") == text
    spec = load_spec(output)
    assert spec.name == "loans"  # from the file name
    assert (spec.target.column, spec.target.positive) == ("repaid", "1")
    frame = pl.read_csv(loans_csv)
    assert complete_spec(spec, frame).feature_columns == ["income", "purpose"]


def test_inspect_refuses_to_overwrite_unless_told(loans_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "spec.yaml"
    output.write_text("mine\n", encoding="utf-8")
    quiet = {"echo": lambda _line: None}
    with pytest.raises(OutputError) as caught:
        inspect_table(loans_csv, name="loans", output=output, **quiet)
    assert caught.value.rule == "output-exists"
    assert output.read_text(encoding="utf-8") == "mine\n"
    text = inspect_table(loans_csv, name="loans", output=output, overwrite=True, **quiet)
    assert output.read_text(encoding="utf-8") == text


def test_inspect_without_output_writes_nothing_and_reports_todos(
    loans_csv: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    text = inspect_table(loans_csv, name="loans", echo=lines.append)
    assert list(tmp_path.glob("*.yaml")) == []
    # 'repaid' is not named like a label: the target is left to the user
    assert "column: TODO" in text
    assert "To fill in before the spec loads: target.column, target.positive" in lines[0]


def test_inspect_of_a_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(DataReadError):
        inspect_table(tmp_path / "absent.csv", echo=lambda _line: None)
