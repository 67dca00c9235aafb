"""Honest tables as users bring them publish under the default gates, through the command.

Two of the kinds the gates used to refuse: the README's own example (four low-cardinality
columns: real held-out rows repeat training rows nearly always) run exactly as the README
writes it, and a 0/1-target table whose spec says ``positive: 1`` and ``privileged: [1]``;
and the smallest bundled table, German credit (800 training rows), with its recommended
settings. All train with the default settings: the point is what the default gates decide.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairdistill.models.spec import load_spec

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
FAIRDISTILL = ".venv/bin/fairdistill"


def readme_example() -> tuple[list[list[str]], str]:
    """The commands and the spec of the README's "Bring your own data", as written."""
    section = README.read_text(encoding="utf-8").split("## Bring your own data", 1)[1]
    bash = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    spec = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert bash and spec, "the README's example lost its commands or its spec"
    commands = [shlex.split(line, comments=True) for line in bash.group(1).splitlines()]
    return [command for command in commands if command], spec.group(1)


def loans(rows: int = 2000, seed: int = 11) -> pl.DataFrame:
    """Applications as the README describes them: approved, sex, race, purpose."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows)
    race = rng.choice(["white", "black", "asian", "other"], rows, p=[0.55, 0.2, 0.15, 0.1])
    purpose = rng.choice(["car", "house", "education", "business"], rows)
    odds = {"car": 0.5, "house": 0.7, "education": 0.35, "business": 0.45}
    chance = np.array([odds[p] for p in purpose]) + np.where(sex == "male", 0.1, -0.05)
    approved = np.where(rng.random(rows) < chance, "yes", "no")
    return pl.DataFrame({"approved": approved, "sex": sex, "race": race, "purpose": purpose})


def bar_passage(rows: int = 2000, seed: int = 3) -> pl.DataFrame:
    """A 0/1 target and a 0/1 sensitive attribute, as most fairness tables store them."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, rows)
    gpa = rng.normal(3.0, 0.4, rows) + 0.1 * group
    lsat = rng.normal(36, 5, rows).round()
    passed = ((gpa - 3.0) * 2 + (lsat - 36) / 5 + rng.normal(0, 1, rows) > -0.8).astype(int)
    return pl.DataFrame({"group": group, "gpa": gpa.round(2), "lsat": lsat, "pass_bar": passed})


def fairdistill(arguments: list[str], folder: Path, environment: dict[str, str]):
    return subprocess.run(
        [sys.executable, "-m", "fairdistill.flows.cli", *arguments],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def run_readme_example(folder: Path, environment: dict[str, str]) -> Path:
    commands, spec_text = readme_example()
    loans().write_csv(folder / "loans.csv")
    inspect, validate, run = commands
    assert inspect[0] == FAIRDISTILL and inspect[1] == "inspect", inspect
    drafted = fairdistill(inspect[1:], folder, environment)
    assert drafted.returncode == 0, drafted.stderr
    assert (folder / "loans.yaml").is_file()
    # The user checks the draft and edits it into the README's spec.
    (folder / "loans.yaml").write_text(spec_text, encoding="utf-8")
    for command in (validate, run):
        assert command[0] == FAIRDISTILL, command
        completed = fairdistill(command[1:], folder, environment)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    return folder / run[run.index("--output") + 1]


def run_bar_passage(folder: Path, environment: dict[str, str]) -> Path:
    bar_passage().write_csv(folder / "bar.csv")
    (folder / "bar.yaml").write_text(
        "name: bar\ntarget: {column: pass_bar, positive: 1}\n"
        "sensitive:\n  - {column: group, privileged: [1]}\n",
        encoding="utf-8",
    )
    arguments = ["run", "--data", "bar.csv", "--spec", "bar.yaml", "--output", "published"]
    completed = fairdistill(arguments, folder, environment)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return folder / "published"


def run_german(folder: Path, environment: dict[str, str]) -> Path:
    completed = fairdistill(
        ["run", "--dataset", "german", "--output", "published"], folder, environment
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return folder / "published"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> dict[str, Path]:
    environment = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    environment.pop("MLFLOW_TRACKING_URI", None)
    runs = {"readme": run_readme_example, "bar_passage": run_bar_passage, "german": run_german}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {
            name: pool.submit(run, tmp_path_factory.mktemp(name), environment)
            for name, run in runs.items()
        }
        return {name: future.result() for name, future in futures.items()}


def manifest_of(output: Path) -> dict:
    return json.loads((output / "latest" / "manifest.json").read_text(encoding="utf-8"))


def test_the_readme_example_publishes_as_written(published: dict[str, Path]) -> None:
    """The README: real held-out rows of four low-cardinality columns
    repeat training rows nearly always; the synthetic rows may too."""
    manifest = manifest_of(published["readme"])
    gates = {gate["gate"]: gate for gate in manifest["gates"]}
    assert all(gate["passed"] for gate in gates.values()), gates
    copies = gates["max_exact_copy_excess"]
    assert copies["baseline_metric"] == "privacy.holdout_exact_copy_rate"
    assert copies["baseline"] > 0.5 and copies["value"] > 0.5  # the old gate: <= 0.05
    assert [a["column"] for a in manifest["spec"]["sensitive"]] == ["sex", "race"]


def test_a_0_1_target_written_as_numbers_publishes(published: dict[str, Path]) -> None:
    """``positive: 1`` and ``privileged: [1]`` as YAML numbers."""
    manifest = manifest_of(published["bar_passage"])
    assert all(gate["passed"] for gate in manifest["gates"]), manifest["gates"]
    assert manifest["spec"]["target"]["positive"] == "1"
    assert manifest["spec"]["sensitive"][0]["privileged"] == ["1"]
    assert load_spec(Path(manifest["input"]["spec_path"])).target.positive == "1"


def test_the_bundled_german_credit_publishes(published: dict[str, Path]) -> None:
    manifest = manifest_of(published["german"])
    assert all(gate["passed"] for gate in manifest["gates"]), manifest["gates"]
    # With the product's defaults: no settings of its own; batch and passes scale to its rows.
    for stage in ("teacher", "student"):
        assert manifest["config"][stage]["batch_size"] is None
        assert manifest["config"][stage]["epochs"] is None
