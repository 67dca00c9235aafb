"""``fairdistill validate`` on tables that pass: what it warns about, what it accepts as
written, and that it checks a table without the model code or the engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from typer.testing import CliRunner

from fairdistill.flows.cli import app
from fairdistill.models.codec import TabularCodec
from fairdistill.models.spec import complete_spec, load_spec

SPEC = {
    "name": "loans",
    "target": {"column": "approved", "positive": "yes"},
    "sensitive": [{"column": "sex", "privileged": ["male"]}],
    "min_rows": 100,
    "min_group_rows": 20,
}


def loans(rows: int = 300, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "sex": rng.choice(["female", "male"], rows),
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(3000.0, 800.0, rows).round(2),
            "approved": rng.choice(["yes", "no"], rows),
        }
    )


def write_spec(folder: Path, **changes: object) -> Path:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}), encoding="utf-8")
    return path


def validate(data: Path, spec: Path, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", "--data", str(data), "--spec", str(spec), *more])
    return result.exit_code, result.stdout + result.stderr


def test_an_identifier_column_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """30,000 distinct ids pass validation, named in a warning, and are never one-hot."""
    rows = 30_000
    frame = loans(rows).with_columns(
        pl.Series("applicant_id", [f"A{i:07d}" for i in range(rows)]).shuffle(seed=3)
    )
    data = tmp_path / "loans.parquet"
    frame.write_parquet(data)
    spec = write_spec(tmp_path)
    code, text = validate(data, spec)
    assert code == 0, text
    assert "column 'applicant_id' is left out of the model" in text
    assert "30,000 distinct values" in text
    completed = complete_spec(load_spec(spec), frame)
    assert completed.ignored_columns == ["applicant_id"]
    assert TabularCodec.fit(frame, completed).feature_dim < 20


def test_a_constant_column_passes_with_a_warning(tmp_path: Path) -> None:
    """One value everywhere is legitimate data (one branch, one year): kept, and said."""
    data = tmp_path / "loans.csv"
    loans().with_columns(pl.lit("EUR").alias("currency")).write_csv(data)
    code, text = validate(data, write_spec(tmp_path))
    assert code == 0, text
    assert "column 'currency' holds the same value ('EUR') in every row" in text


def test_a_semicolon_file_is_read_as_its_header_shows_or_as_told(tmp_path: Path) -> None:
    """A ';' file passes, detected, or with --separator or the spec's."""
    data = tmp_path / "loans.csv"
    data.write_text(loans().write_csv(separator=";"), encoding="utf-8")
    assert validate(data, write_spec(tmp_path))[0] == 0
    assert validate(data, write_spec(tmp_path), "--separator", ";")[0] == 0
    assert validate(data, write_spec(tmp_path, separator=";"))[0] == 0
    # The option wins over the spec: told ',' it refuses, naming what the file looks like.
    code, text = validate(data, write_spec(tmp_path, separator=";"), "--separator", ",")
    assert code == 2 and "looks separated by ';'" in text and "--separator ';'" in text


def test_0_1_labels_are_written_as_yaml_numbers(tmp_path: Path) -> None:
    """``positive: 1`` and ``privileged: [1]``, against integer columns."""
    frame = loans().with_columns(
        (pl.col("approved") == "yes").cast(pl.Int64).alias("approved"),
        (pl.col("sex") == "male").cast(pl.Int64).alias("sex"),
    )
    data = tmp_path / "loans.parquet"
    frame.write_parquet(data)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: loans\ntarget: {column: approved, positive: 1}\n"
        "sensitive:\n  - {column: sex, privileged: [1]}\n",
        encoding="utf-8",
    )
    code, text = validate(data, spec)
    assert code == 0, text


def test_a_refusal_imports_neither_the_model_code_nor_the_engines(tmp_path: Path) -> None:
    """A bad file is refused before PyTorch, MLflow, Prefect or Great
    Expectations are imported (and so before Prefect's temporary server is started)."""
    data = tmp_path / "loans.csv"
    data.write_text("sex,approved\n", encoding="utf-8")
    arguments = ["run", "--data", str(data), "--spec", str(write_spec(tmp_path))]
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fairdistill.flows.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"torch", "mlflow", "prefect", "great_expectations", "sklearn"}
    assert "polars" in imported and not heavy & imported, sorted(heavy & imported)
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rule input-has-rows" in errors[0]


def test_rows_that_break_a_constraint_are_refused_with_exit_code_2(tmp_path: Path) -> None:
    frame = loans().with_columns(pl.col("income").alias("budget"))
    data = tmp_path / "loans.parquet"
    frame.write_parquet(data)
    spec = write_spec(tmp_path, constraints=["budget <= income"])
    code, text = validate(data, spec)
    assert code == 0, text
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(1e6).otherwise(pl.col("budget")).alias("budget")
    )
    broken.write_parquet(data)
    code, text = validate(data, spec)
    assert code == 2
    assert "1 row breaks the constraint 'budget <= income'" in text and "row 4 (" in text


def test_a_constraint_naming_a_misspelt_column_suggests_the_right_one(tmp_path: Path) -> None:
    data = tmp_path / "loans.parquet"
    loans().write_parquet(data)
    code, text = validate(data, write_spec(tmp_path, constraints=["incme >= age"]))
    assert code == 2
    assert "'incme >= age'" in text and "did you mean 'income'?" in text
