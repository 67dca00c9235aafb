"""The catalogue of bad inputs: each case builds its files in a folder and says what the
real command must answer.

A case names the command line it runs (``fairdistill`` and its arguments), the exit code,
the rule its one error line names (with the column and the file, when it has them), and
whether a run exists to record it: ``"none"`` for what is refused before any work starts
(options, configuration, and every bad table or spec), ``"failed"`` for what only a run
can find (the output location, the memory the rows need, a quality gate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import yaml

from fairdistill.data import bundled_dataset

ROWS = 300
SPEC = {
    "name": "loans",
    "target": {"column": "approved", "positive": "yes"},
    "sensitive": [{"column": "sex", "privileged": ["male"]}],
    "min_rows": 100,
    "min_group_rows": 20,
}
# Whatever trains does so for one epoch: a case that must reach a late stage needs no more.
ONE_EPOCH = ["--epochs", "1", "--student-epochs", "1"]
NO_GATES = ["--set", "gates.min_utility_ratio=null", "--set", "gates.max_exact_copy_excess=null"]
NO_GATES += ["--set", "gates.max_dcr_share_below_holdout_p5=null"]


def loans(rows: int = ROWS, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "sex": rng.choice(["female", "male"], rows),
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(3000.0, 800.0, rows).round(2),
            "purpose": rng.choice(["car", "house", "education"], rows),
            "approved": rng.choice(["yes", "no"], rows),
        }
    )


BASE = loans()


@dataclass(frozen=True)
class Invocation:
    """What a case runs, and what its error must name."""

    arguments: list[str]  # after ``fairdistill``
    names_file: Path | str | None = None
    output: Path | None = None  # the folder that must stay empty (run cases)
    run_name: str | None = None  # the run's name, to find its MLflow record
    names: tuple[str, ...] = ()  # more text the error line must hold
    absent: tuple[str, ...] = ()  # text it must not hold
    check: Callable[[], None] | None = None  # a last look at what the case left behind
    # A command that must succeed first (publishing a run to tamper with), then what to do.
    setup: list[str] | None = None
    after_setup: Callable[[], None] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Invocation]
    rule: str
    column: str | None = None
    exit_code: int = 2
    recorded: Literal["none", "failed"] = "none"
    slow: bool = False  # reaches a run (imports the engines, maybe trains)
    # stderr lines allowed beside the error line (verify lists each mismatch on its own).
    other_stderr: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- building inputs


def write_spec(folder: Path, **changes: object) -> Path:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_arguments(folder: Path, data: Path, spec: Path, *more: str) -> Invocation:
    return bare_run(folder, "--data", str(data), "--spec", str(spec), *more)


def bare_run(folder: Path, *arguments: str) -> Invocation:
    """``fairdistill run ARGUMENTS`` into ``folder/published`` under the folder's name."""
    run_name = folder.name.replace("_", "-")
    output = folder / "published"
    where = [] if "--output" in arguments else ["--output", str(output)]
    command = ["run", *arguments, *where]
    if "--run-name" not in arguments:
        command += ["--run-name", run_name]
    return Invocation(command, output=output, run_name=run_name)


def with_file(invocation: Invocation, names_file: Path | str | None, *names: str) -> Invocation:
    return dataclasses.replace(invocation, names_file=names_file, names=names)


def missing_file(folder: Path) -> Invocation:
    data = folder / "nowhere.csv"
    return with_file(run_arguments(folder, data, write_spec(folder)), data)


def csv_case(frame: pl.DataFrame, *names: str, **spec_changes: object) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.csv"
        frame.write_csv(data)
        invocation = run_arguments(folder, data, write_spec(folder, **spec_changes))
        return with_file(invocation, data, *names)

    return build


def parquet_case(frame: pl.DataFrame) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.parquet"
        frame.write_parquet(data)
        return with_file(run_arguments(folder, data, write_spec(folder)), data)

    return build


def raw_case(name: str, content: bytes, *names: str, **spec_changes: object) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / name
        data.write_bytes(content)
        invocation = run_arguments(folder, data, write_spec(folder, **spec_changes))
        return with_file(invocation, data, *names)

    return build


def spec_text_case(text: str, *names: str) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.csv"
        BASE.write_csv(data)
        spec = write_text(folder / "spec.yaml", text)
        return with_file(run_arguments(folder, data, spec), spec, *names)

    return build


def options_case(
    *arguments: str, names: tuple[str, ...] = (), absent: tuple[str, ...] = ()
) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.csv"
        BASE.write_csv(data)
        invocation = run_arguments(folder, data, write_spec(folder), *arguments)
        return dataclasses.replace(invocation, names=names, absent=absent)

    return build


def config_case(text: str | None, *names: str) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.csv"
        BASE.write_csv(data)
        config = folder / "run.yaml"
        if text is not None:
            write_text(config, text)
        invocation = run_arguments(folder, data, write_spec(folder), "--config", str(config))
        return with_file(invocation, config, *names)

    return build


def output_case(where: Callable[[Path], Path]) -> Callable:
    def build(folder: Path) -> Invocation:
        data = folder / "loans.csv"
        BASE.write_csv(data)
        output = where(folder)
        invocation = run_arguments(folder, data, write_spec(folder), "--output", str(output))
        return dataclasses.replace(invocation, names_file=output, output=output)

    return build


def under_a_file(folder: Path) -> Path:
    write_text(folder / "afile", "not a folder\n")
    return folder / "afile" / "sub"


def replace(frame: pl.DataFrame, column: str, values: list[object]) -> pl.DataFrame:
    return frame.with_columns(pl.Series(column, values, strict=False))


def some_rows(frame: pl.DataFrame, column: str, value: object, count: int) -> pl.DataFrame:
    values = frame.get_column(column).to_list()
    values[:count] = [value] * count
    return replace(frame, column, values)


def semicolons(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(separator=";").encode()


# ---------------------------------------------------------------- cases needing more


def wide_loans(folder: Path) -> Invocation:
    """2,000 categories one-hot: 49 million generated rows would need petabytes."""
    frame = loans(4000).with_columns(
        pl.Series("branch", [f"b{i % 2000:04d}" for i in range(4000)]).shuffle(seed=1)
    )
    data = folder / "wide.parquet"
    frame.write_parquet(data)
    spec = write_spec(folder, columns={"branch": {"type": "categorical"}})
    return run_arguments(folder, data, spec, "--rows", "49000000")


def existing_run(folder: Path) -> Invocation:
    """A run name already published is not replaced without --overwrite."""
    data = folder / "loans.csv"
    BASE.write_csv(data)
    invocation = run_arguments(folder, data, write_spec(folder))
    output, run_name = invocation.output, invocation.run_name
    assert output is not None and run_name is not None
    earlier = output / run_name
    earlier.mkdir(parents=True)
    (earlier / "synthetic.parquet").write_bytes(b"published earlier")

    def untouched() -> None:
        assert [path.name for path in output.iterdir()] == [earlier.name]
        assert (earlier / "synthetic.parquet").read_bytes() == b"published earlier"

    return dataclasses.replace(
        invocation, names_file=earlier, output=None, names=("--overwrite",), check=untouched
    )


def gate_missed(folder: Path) -> Invocation:
    """No classifier trained on synthetic rows ranks twice as well as one trained on real
    ones: the gate misses, and the error names its key and the line that changes it."""
    data = folder / "loans.parquet"
    loans(600).write_parquet(data)
    gate = ("--set", "gates.min_utility_ratio=2")
    invocation = run_arguments(folder, data, write_spec(folder), *ONE_EPOCH, *gate)
    names = ("gates.min_utility_ratio", "`gates: {min_utility_ratio: ", "--set gates.")
    return dataclasses.replace(invocation, names=names)


def verify_tampered(folder: Path) -> Invocation:
    """A published folder whose data lost one bit: verify exits 4, naming the mismatch."""
    data = folder / "loans.parquet"
    loans(400).write_parquet(data)
    published = run_arguments(folder, data, write_spec(folder), *ONE_EPOCH, *NO_GATES)
    assert published.output is not None and published.run_name is not None
    manifest = published.output / published.run_name / "manifest.json"

    def flip_one_bit() -> None:
        synthetic = manifest.parent / "synthetic.parquet"
        content = bytearray(synthetic.read_bytes())
        content[len(content) // 2] ^= 0x01
        synthetic.write_bytes(bytes(content))

    return Invocation(
        ["verify", str(manifest)],
        manifest,
        names=("1 mismatch",),
        setup=published.arguments,
        after_setup=flip_one_bit,
    )


def verify_not_json(folder: Path) -> Invocation:
    manifest = write_text(folder / "manifest.json", '{"fairdistill_manifest": 1, "out')
    return Invocation(["verify", str(manifest)], manifest)


def german_spec_case(folder: Path) -> Invocation:
    """A bundled spec against a table it does not describe."""
    data = folder / "loans.csv"
    BASE.write_csv(data)
    return with_file(run_arguments(folder, data, bundled_dataset("german").spec_path), data)


def small_cell(frame: pl.DataFrame) -> pl.DataFrame:
    """Women approved in 5 rows only: both groups are large, one (group, label) cell is not."""
    female = frame.get_column("sex") == "female"
    approved = [
        "yes" if is_female and index < 5 else ("no" if is_female else label)
        for index, (is_female, label) in enumerate(
            zip(female.to_list(), frame.get_column("approved").to_list(), strict=True)
        )
    ]
    ordered = frame.with_columns(pl.Series("approved", approved))
    return ordered.sort(pl.col("sex") != "female", maintain_order=True)


def validate_header_only(folder: Path) -> Invocation:
    data = folder / "loans.csv"
    data.write_bytes(b"sex,approved\n")
    return Invocation(["validate", "--data", str(data), "--spec", str(write_spec(folder))], data)


LATIN1 = "sex,age,income,purpose,approved\n" + "female,30,1.0,café,yes\n" * 150
UNTYPED_AGES = some_rows(BASE.with_columns(pl.col("age").cast(pl.String)), "age", "unknown", 9)

CASES = [
    # ------------------------------------------------------------ the file
    Case("missing_file", missing_file, "input-exists"),
    Case("empty_file", raw_case("loans.csv", b""), "input-not-empty"),
    Case("header_only", raw_case("loans.csv", b"sex,age,approved\n"), "input-has-rows"),
    Case(
        "separator_given_is_wrong",
        raw_case("loans.csv", semicolons(BASE), "--separator ';'", separator=","),
        "input-separator",
    ),
    Case(
        "separator_cannot_be_told",
        raw_case("loans.csv", b"sex;age|approved\n" + b"male;30|yes\n" * 150),
        "input-separator",
    ),
    Case("not_utf8", raw_case("loans.csv", LATIN1.encode("latin-1")), "input-utf8"),
    Case("corrupt_parquet", raw_case("loans.parquet", b"PAR1 not parquet"), "input-parquet"),
    Case("unsupported_format", raw_case("loans.xlsx", b"PK\x03\x04"), "input-format"),
    Case(
        "duplicated_columns",
        raw_case("loans.csv", b"sex,age,age,approved\n" + b"male,1,2,yes\n" * 150),
        "input-unique-columns",
        column="age",
    ),
    Case(
        "ragged_rows",
        raw_case("loans.csv", b"sex,age,approved\nmale,30,yes\nfemale,31,no,extra\n"),
        "input-csv",
    ),
    Case("unclosed_quote", raw_case("loans.csv", b'sex,age\nmale,"30\nfemale,31\n'), "input-csv"),
    # ------------------------------------------------------------ the spec
    Case("malformed_yaml_spec", spec_text_case("name: loans\ntarget: [unclosed\n"), "spec-yaml"),
    Case("spec_not_a_mapping", spec_text_case("- name\n- target\n"), "spec-shape"),
    Case(
        "spec_with_placeholders",
        spec_text_case(yaml.safe_dump({**SPEC, "target": {"column": "TODO", "positive": "yes"}})),
        "spec-todo",
    ),
    Case(
        "spec_misspelt_key",
        spec_text_case(yaml.safe_dump({**SPEC, "colums": {}}), "'colums'", "'columns'"),
        "spec-unknown-key",
    ),
    Case(
        "spec_misspelt_nested_key",
        spec_text_case(
            yaml.safe_dump({**SPEC, "target": {"column": "approved", "postive": "yes"}}),
            "'target.postive'",
            "'positive'",
        ),
        "spec-unknown-key",
    ),
    Case(
        "spec_lacks_the_target",
        spec_text_case(yaml.safe_dump({k: v for k, v in SPEC.items() if k != "target"})),
        "spec-schema",
    ),
    Case(
        "spec_value_out_of_range",
        spec_text_case(yaml.safe_dump({**SPEC, "min_rows": 0})),
        "spec-schema",
    ),
    Case(
        "spec_repeats_a_sensitive_column",
        spec_text_case(yaml.safe_dump({**SPEC, "sensitive": SPEC["sensitive"] * 2})),
        "spec-schema",
    ),
    Case(
        "spec_names_unknown_column",
        csv_case(BASE, columns={"salary": {"type": "continuous"}}),
        "spec-columns-exist",
        column="salary",
    ),
    Case("spec_of_another_table", german_spec_case, "spec-columns-exist"),
    # ------------------------------------------------------------ the data against its spec
    Case(
        "target_missing",
        csv_case(BASE.drop("approved")),
        "spec-columns-exist",
        column="approved",
    ),
    Case("sensitive_missing", csv_case(BASE.drop("sex")), "spec-columns-exist", column="sex"),
    Case(
        "target_one_class",
        csv_case(replace(BASE, "approved", ["yes"] * ROWS)),
        "fairdistill.target_two_classes",
        column="approved",
    ),
    Case(
        "target_three_classes",
        csv_case(
            some_rows(BASE, "approved", "maybe", 40),
            target={"column": "approved", "positive": "yes", "classes": ["yes", "no"]},
        ),
        "fairdistill.target_two_classes",
        column="approved",
    ),
    Case(
        "positive_label_absent",
        csv_case(BASE, "e.g. ", "yes", target={"column": "approved", "positive": "Yes"}),
        "expect_column_distinct_values_to_contain_set",
        column="approved",
    ),
    Case(
        "target_with_nulls",
        csv_case(some_rows(BASE, "approved", None, 5)),
        "expect_column_values_to_not_be_null",
        column="approved",
    ),
    Case(
        "sensitive_one_group",
        csv_case(replace(BASE, "sex", ["male"] * ROWS)),
        "fairdistill.sensitive_two_groups",
        column="sex",
    ),
    Case(
        "privileged_value_absent",
        csv_case(BASE, sensitive=[{"column": "sex", "privileged": ["Male"]}]),
        "fairdistill.sensitive_two_groups",
        column="sex",
    ),
    Case(
        "sensitive_group_of_three",
        csv_case(replace(BASE, "sex", ["female"] * 3 + ["male"] * (ROWS - 3))),
        "fairdistill.min_group_rows",
        column="sex",
    ),
    Case(
        "group_and_label_cell_too_small",
        csv_case(small_cell(BASE)),
        "fairdistill.min_group_label_rows",
        column="sex",
    ),
    Case(
        "sensitive_with_nulls",
        csv_case(some_rows(BASE, "sex", None, 7)),
        "expect_column_values_to_not_be_null",
        column="sex",
    ),
    Case(
        "all_null_column",
        csv_case(BASE.with_columns(pl.lit(None, dtype=pl.String).alias("notes"))),
        "fairdistill.column_all_null",
        column="notes",
    ),
    Case(
        "declared_numbers_mixed_with_text",
        csv_case(UNTYPED_AGES, columns={"age": {"type": "integer"}}),
        "fairdistill.numeric_column_holds_text",
        column="age",
    ),
    Case(
        "undeclared_numbers_mixed_with_text",
        csv_case(UNTYPED_AGES, "unknown", "type: categorical"),
        "fairdistill.untyped_column_mixes_numbers_and_text",
        column="age",
    ),
    Case(
        "inf_and_nan",
        parquet_case(
            some_rows(some_rows(BASE, "income", float("nan"), 4), "income", float("inf"), 2)
        ),
        "fairdistill.numeric_values_finite",
        column="income",
    ),
    Case(
        "too_few_rows",
        csv_case(BASE.head(50), "50 rows", min_group_rows=2),
        "expect_table_row_count_to_be_between",
    ),
    Case(
        "value_outside_declared_range",
        csv_case(some_rows(BASE, "age", 5, 3), columns={"age": {"type": "integer", "min": 18}}),
        "expect_column_values_to_be_between",
        column="age",
    ),
    Case(
        "declared_complete_column_with_nulls",
        csv_case(some_rows(BASE, "purpose", None, 4), columns={"purpose": {"nullable": False}}),
        "expect_column_values_to_not_be_null",
        column="purpose",
    ),
    Case(
        "constraint_broken",
        csv_case(
            some_rows(BASE, "income", 10.0, 6),
            "'income >= age'",
            "6 rows",
            constraints=["income >= age"],
        ),
        "spec_constraint",
    ),
    Case(
        "split_column_with_a_third_part",
        csv_case(
            BASE.with_columns(
                pl.Series("part", (["train"] * 3 + ["test"]) * (ROWS // 4)).scatter(
                    [7, 8], "holdout"
                )
            ),
            "['train', 'test']",
            split_column="part",
        ),
        "expect_column_values_to_be_in_set",
        column="part",
    ),
    # ------------------------------------------------------------ options and configuration
    Case(
        "rows_zero",
        options_case("--rows", "0", names=("--rows 0",), absent=("generate.rows",)),
        "option-value",
    ),
    Case("rows_negative", options_case("--rows", "-5", names=("--rows",)), "option-value"),
    Case("rows_absurd", options_case("--rows", "10000000000", names=("--rows",)), "option-value"),
    Case(
        "beta_negative",
        options_case("--beta", "-1", names=("--beta",), absent=("teacher.beta",)),
        "option-value",
    ),
    Case("epochs_zero", options_case("--epochs", "0", names=("--epochs",)), "option-value"),
    Case("mode_unknown", options_case("--mode", "magic", names=("--mode",)), "option-value"),
    Case("device_unknown", options_case("--device", "tpu", names=("--device",)), "option-value"),
    Case(
        "run_name_escapes",
        options_case("--run-name", "../up", names=("--run-name",)),
        "option-value",
    ),
    Case("set_without_value", options_case("--set", "gates", names=("--set",)), "option-value"),
    Case(
        "set_misspelt_key",
        options_case("--set", "gates.max_copy_rate=0.1", names=("'max_exact_copy_rate'",)),
        "config-unknown-key",
    ),
    Case(
        "separator_too_long",
        options_case("--separator", ";;", names=("one character",)),
        "input-separator",
    ),
    Case(
        "unknown_bundled_dataset",
        lambda folder: dataclasses.replace(bare_run(folder, "--dataset", "nope"), names=("adult",)),
        "config-schema",
    ),
    Case(
        "data_without_spec",
        lambda folder: bare_run(folder, "--data", str(folder / "x.csv")),
        "config-schema",
    ),
    Case("config_missing", config_case(None), "config-exists"),
    Case("config_not_yaml", config_case("teacher: [1,\n"), "config-yaml"),
    Case("config_not_a_mapping", config_case("- 1\n- 2\n"), "config-shape"),
    Case(
        "config_misspelt_key",
        config_case("teacher: {epoch: 3}\n", "'teacher.epoch'", "'epochs'"),
        "config-unknown-key",
    ),
    Case(
        "config_value_out_of_range",
        config_case("teacher: {epochs: 0}\n", "'teacher.epochs' = 0"),
        "config-schema",
    ),
    # ------------------------------------------------------------ the other commands
    Case("validate_header_only", validate_header_only, "input-has-rows"),
    Case(
        "inspect_missing_file",
        lambda folder: Invocation(["inspect", str(folder / "nowhere.csv")], folder / "nowhere.csv"),
        "input-exists",
    ),
    # verify answers 4 for whatever it cannot match, an unreadable manifest included.
    Case(
        "verify_missing_manifest",
        lambda folder: Invocation(
            ["verify", str(folder / "manifest.json")], folder / "manifest.json"
        ),
        "manifest-exists",
        exit_code=4,
    ),
    Case("verify_not_json", verify_not_json, "manifest-json", exit_code=4),
    # ------------------------------------------------------------ found by a run
    Case("rows_beyond_memory", wide_loans, "generate-rows-memory", recorded="failed", slow=True),
    Case(
        "output_under_a_file",
        output_case(under_a_file),
        "output-writable",
        recorded="failed",
        slow=True,
    ),
    Case(
        "output_in_proc",
        output_case(lambda _: Path("/proc/fairdistill-out")),
        "output-writable",
        recorded="failed",
        slow=True,
    ),
    Case(
        "existing_run_not_overwritten",
        existing_run,
        "output-no-overwrite",
        recorded="failed",
        slow=True,
    ),
    Case("gate_missed", gate_missed, "quality-gates", exit_code=3, recorded="failed", slow=True),
    Case(
        "verify_tampered_data",
        verify_tampered,
        "verify-mismatch",
        exit_code=4,
        slow=True,
        other_stderr=("MISMATCH ",),
    ),
]
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names repeat"
