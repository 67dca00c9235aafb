"""The ``fairdistill`` command.

Options override the config file, which overrides the defaults; the merged result is
validated once into a :class:`RunConfig` before any work starts. Errors a user can fix
print as one sentence and a non-zero exit code; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from fairdistill.flows.settings import load_settings, prepare_environment
from fairdistill.models.errors import FairdistillError
from fairdistill.tasks.services.uris import redact_uri

app = typer.Typer(
    name="fairdistill",
    help="Regenerate fair synthetic datasets: validate, learn a fair latent space, distill "
    "it into a small student, generate, evaluate and publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DatasetOption = Annotated[
    str | None,
    typer.Option("--dataset", help="Bundled dataset name (see 'fairdistill datasets')."),
]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Your own table: a .csv or .parquet file.")
]
SpecOption = Annotated[
    Path | None,
    typer.Option(
        "--spec", help="The dataset spec (YAML) for --data: target, sensitive attributes."
    ),
]
SeparatorOption = Annotated[
    str | None,
    typer.Option(
        "--separator",
        help="The column separator of a CSV --data file, e.g. ';' (default: the spec's, else "
        "the one its header shows).",
    ),
]
DebugOption = Annotated[
    bool,
    typer.Option("--debug", help="Show every log line, and the traceback when something fails."),
]

# The command-line option behind each run setting it sets, to blame a refused value on it.
RUN_OPTIONS = {
    "dataset": "--dataset",
    "data": "--data",
    "spec": "--spec",
    "separator": "--separator",
    "output": "--output",
    "run_name": "--run-name",
    "overwrite": "--overwrite",
    "seed": "--seed",
    "device": "--device",
    "generate.rows": "--rows",
    "generate.mode": "--mode",
    "generate.sensitive_mix": "--mix",
    "teacher.beta": "--beta",
    "teacher.criterion": "--criterion",
    "teacher.epochs": "--epochs",
    "student.epochs": "--student-epochs",
    "reuse_stages": "--fresh",
}


def one_sentence(error: BaseException) -> str:
    """The error as one line: what is wrong, where (file, column, rule), what to do."""
    if not isinstance(error, FairdistillError):
        text = str(error).strip().splitlines()[0] if str(error).strip() else "no message"
        return (
            f"unexpected {type(error).__name__}: {text.rstrip('.')}; rerun with --debug "
            "to see the traceback."
        )
    where = [
        *([f"file {error.file}"] if error.file else []),
        *([f"column '{error.column}'"] if error.column else []),
        *([f"rule {error.rule}"] if error.rule else []),
    ]
    sentence = error.message.rstrip(". ")
    if where:
        sentence += f" [{', '.join(where)}]"
    if error.hint:
        sentence += f"; what to do: {error.hint.rstrip('. ')}"
    return " ".join(sentence.split()) + "."


def fail(error: BaseException, *, debug: bool) -> None:
    """Report ``error`` as one line and exit: 2 bad input or config, 3 gate missed, 1 other."""
    if debug:
        raise error
    typer.echo(f"error: {one_sentence(error)}", err=True)
    raise typer.Exit(error.exit_code if isinstance(error, FairdistillError) else 1)


def merged_settings(
    config_file: Path | None, overrides: dict[str, Any], assignments: dict[str, Any]
) -> dict[str, Any]:
    """The config file's settings with the command line's over them, not yet validated."""
    from fairdistill.flows.config import load_config_file, merge_overrides

    base = load_config_file(config_file) if config_file else {}
    if overrides.get("data") is not None:
        overrides = {**overrides, "dataset": None}
    return merge_overrides(merge_overrides(base, assignments, keep_none=True), overrides)


def collect_config(
    config_file: Path | None, overrides: dict[str, Any], assignments: dict[str, Any]
) -> Any:
    from fairdistill.flows.config import build_config

    options = {key: f"--set {key}" for key in assignments}
    options |= {key: RUN_OPTIONS[key] for key, value in overrides.items() if value is not None}
    return build_config(
        merged_settings(config_file, overrides, assignments),
        source=str(config_file) if config_file else None,
        options=options,
    )


@app.command()
def run(
    dataset: DatasetOption = None,
    data: DataOption = None,
    spec: SpecOption = None,
    separator: SeparatorOption = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file holding any of the run options.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Folder receiving one subfolder per published run."),
    ] = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Name of the published run folder.")
    ] = None,
    overwrite: Annotated[
        bool | None, typer.Option("--overwrite", help="Replace a published run of the same name.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of every random choice.")] = None,
    rows: Annotated[
        int | None, typer.Option("--rows", help="Synthetic rows to generate (default: train size).")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="sample (from the latent prior) or transform.")
    ] = None,
    mix: Annotated[
        str | None, typer.Option("--mix", help="Sensitive groups: real proportions or balanced.")
    ] = None,
    beta: Annotated[
        float | None,
        typer.Option("--beta", help="Fairness weight of the distance-correlation penalty."),
    ] = None,
    criterion: Annotated[
        str | None,
        typer.Option("--criterion", help="demographic_parity or equalized_odds."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Teacher epochs.")] = None,
    student_epochs: Annotated[
        int | None, typer.Option("--student-epochs", help="Student distillation epochs.")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Recompute every stage from scratch: reuse no earlier identical stage and "
            "resume from no epoch checkpoint.",
        ),
    ] = False,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: any run setting by its dotted name, e.g. --set "
            "gates.min_utility_ratio=0.7 (null switches a gate off); repeat for several. "
            "'fairdistill config-schema' lists them.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only warnings and the result.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run summary as JSON (for schedulers).")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Run the whole pipeline and publish the synthetic dataset if it passes the gates."""
    if quiet or as_json:
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    overrides = {
        "dataset": dataset,
        "data": str(data) if data else None,
        "spec": str(spec) if spec else None,
        "separator": separator,
        "output": str(output) if output else None,
        "run_name": run_name,
        "overwrite": overwrite,
        "seed": seed,
        "device": device,
        "generate.rows": rows,
        "generate.mode": mode,
        "generate.sensitive_mix": mix,
        "teacher.beta": beta,
        "teacher.criterion": criterion,
        "teacher.epochs": epochs,
        "student.epochs": student_epochs,
        "reuse_stages": False if fresh else None,
    }
    try:
        from fairdistill.flows.config import parse_assignments
        from fairdistill.flows.preflight import refuse_bad_input

        settings = parse_assignments(assignments or [])
        # A bad table or spec is refused here, in about a second, before anything starts.
        refuse_bad_input(merged_settings(config_file, overrides, settings))
        config = collect_config(config_file, overrides, settings)
        from fairdistill.flows.server_warmup import start_temporary_server_early

        # Its own output (a failed start Prefect recovers from) goes to a log, not the console.
        server_log = None if debug else load_settings().home / "prefect-server.log"
        wait_for_server = start_temporary_server_early(server_log)
        summary = run_flow(config, debug=debug, quiet=quiet or as_json, wait=wait_for_server)
    except Exception as error:
        fail(error, debug=debug)
        return
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    print_summary(summary)


def run_flow(config: Any, *, debug: bool, quiet: bool, wait: Callable[[], None]) -> Any:
    """Import the engines (while Prefect's temporary server starts), then run the flow."""
    from fairdistill.flows.live_progress import live_stages_if_interactive
    from fairdistill.flows.logging_setup import configure_console
    from fairdistill.flows.regenerate import prepare_tracking, regenerate_fair_dataset

    configure_console(debug=debug)
    if quiet:
        # MLflow prints its own progress ("Successfully registered model ...") straight to
        # stderr; its warnings that matter to a user surface as errors or in our log.
        from mlflow.utils.logging_utils import disable_logging

        disable_logging()
    prepare_tracking(config)
    wait()
    with live_stages_if_interactive(enabled=not quiet):
        return regenerate_fair_dataset(config)


def print_summary(summary: Any) -> None:
    from rich.console import Console

    from fairdistill.flows.run_summary import print_run_summary

    tracking_uri = redact_uri(load_settings().tracking_uri)
    print_run_summary(summary, tracking_uri, Console(soft_wrap=False))


@app.command()
def generate(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The generator: a published run's manifest.json (or folder), its MLflow run "
            "id, 'champion', 'candidate' or 'version N'.",
        ),
    ],
    rows: Annotated[int, typer.Option("--rows", help="Rows to draw, exactly.")],
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="A condition every row meets: 'age >= 60', 'workclass in [Private, "
            "Self-emp-inc]', 'age between 30 and 50'; repeat for several (all hold).",
        ),
    ] = None,
    where_file: Annotated[
        Path | None,
        typer.Option("--where-file", help="YAML file holding a list of conditions."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    sensitive_mix: Annotated[
        str,
        typer.Option("--sensitive-mix", help="Sensitive groups: real (training) mix or balanced."),
    ] = "real",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Registered model (fairdistill-<dataset>) for an alias or version."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Folder receiving the published run folder."),
    ] = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Name of the published run folder.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a published run of the same name.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Draw rows that meet conditions from a registered generator, without retraining."""
    try:
        request = generate_request(
            source,
            rows,
            where or [],
            where_file,
            seed,
            sensitive_mix,
            model,
            output,
            run_name,
            overwrite,
        )
        from fairdistill.flows.conditional_generation import generate_rows

        if not debug:
            from mlflow.utils.logging_utils import disable_logging

            disable_logging()
        result = generate_rows(request)
    except Exception as error:
        fail(error, debug=debug)
        return
    if as_json:
        typer.echo(json.dumps(result.__dict__, indent=2))
        return
    typer.echo(f"published {result.rows:,} rows to {result.folder}")
    typer.echo(f"source {result.source}; MLflow run {result.run_id}; {result.evaluation_status}")


def generate_request(
    source: str,
    rows: int,
    where: list[str],
    where_file: Path | None,
    seed: int,
    sensitive_mix: str,
    model: str | None,
    output: Path | None,
    run_name: str | None,
    overwrite: bool,
) -> Any:
    """The validated request of ``fairdistill generate``; conditions from a file come first."""
    from pydantic import ValidationError

    from fairdistill.flows.conditional_generation import GenerateRequest
    from fairdistill.models.conditions import read_condition_file
    from fairdistill.models.errors import ConfigError

    conditions = []
    if where_file is not None:
        try:
            text = where_file.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"Cannot read the conditions file ({error.strerror or error})",
                file=str(where_file),
                rule="condition-file",
                hint="give the path of a YAML list of conditions",
            ) from error
        conditions += read_condition_file(text, str(where_file))
    try:
        return GenerateRequest(
            source=source,
            rows=rows,
            where=tuple(conditions + where),
            seed=seed,
            sensitive_mix=sensitive_mix,  # type: ignore[arg-type]
            model=model,
            output=str(output) if output else None,
            run_name=run_name,
            overwrite=overwrite,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        option = {"sensitive_mix": "--sensitive-mix", "run_name": "--run-name"}.get(
            str(problem["loc"][0]), f"--{problem['loc'][0]}"
        )
        raise ConfigError(
            f"{option} is refused: {problem['msg']}",
            rule="generate-options",
            hint="see 'fairdistill generate --help'",
        ) from None


@app.command()
def validate(
    dataset: DatasetOption = "adult",
    data: DataOption = None,
    spec: SpecOption = None,
    separator: SeparatorOption = None,
    debug: DebugOption = False,
) -> None:
    """Check a table against its spec with the Great Expectations suite, without training."""
    try:
        from fairdistill.models.inputs import read_input, resolve_input
        from fairdistill.models.validation import (
            check_table,
            raise_for_failures,
            report_to_markdown,
        )

        source = resolve_input(dataset, data, spec, separator)
        data_path = source.data_path
        frame, table_spec = read_input(source)
        checked = check_table(frame, table_spec, source=str(data_path))
        typer.echo(report_to_markdown(checked.report))
        raise_for_failures(checked.report, str(data_path))
    except Exception as error:
        fail(error, debug=debug)
        return
    typer.echo(f"{data_path}: {frame.height:,} rows passed validation.")


@app.command()
def inspect(
    data: Annotated[Path, typer.Argument(help="The table to inspect: .csv or .parquet.")],
    target: Annotated[str | None, typer.Option("--target", help="The label column.")] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="The favourable label value.")
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="A sensitive column; repeat for several."),
    ] = None,
    separator: SeparatorOption = None,
    write: Annotated[
        Path | None, typer.Option("--write", help="Write the drafted spec to this YAML file.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing spec file.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Show what a new table holds and draft its dataset spec for you to check and edit."""
    try:
        from fairdistill.flows.inspect import inspect_table

        text = inspect_table(
            data,
            target=target,
            positive=positive,
            sensitive=sensitive or None,
            separator=separator,
            output=write,
            overwrite=overwrite,
            echo=typer.echo,
        )
    except Exception as error:
        fail(error, debug=debug)
        return
    if write is None:
        typer.echo(text)


@app.command()
def report(
    run: Annotated[
        str,
        typer.Argument(
            help="The MLflow run id printed by 'fairdistill run', or a published run's "
            "folder or manifest.json."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", help="HTML file to write (default: <run name>-report.html)."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Render a run's HTML report again from what MLflow recorded, e.g. for an audit."""
    try:
        from fairdistill.tasks.services.run_report import rerender_report

        path = rerender_report(run, output, load_settings().tracking_uri)
    except Exception as error:
        fail(error, debug=debug)
        return
    typer.echo(f"report: {path}")


@app.command()
def verify(
    manifest: Annotated[Path, typer.Argument(help="manifest.json of a published run folder.")],
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow to check against (default: the recorded one)."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Re-hash a published dataset and check it against its manifest and MLflow record."""
    try:
        from fairdistill.tasks.services.audit import verify as verify_manifest

        result = verify_manifest(manifest, tracking_uri=tracking_uri)
    except Exception as error:
        fail(error, debug=debug)
        return
    for check in result.checks:
        typer.echo(f"ok       {check}")
    for mismatch in result.mismatches:
        typer.echo(f"MISMATCH {mismatch}", err=True)
    if not result.ok:
        count = len(result.mismatches)
        mismatch = FairdistillError(
            f"{count} mismatch{'es' if count != 1 else ''} between the published folder, its "
            "manifest and its MLflow record (each listed above)",
            file=str(manifest),
            rule="verify-mismatch",
            hint="do not use this folder as published: restore its files, or publish the run again",
        )
        typer.echo(f"error: {one_sentence(mismatch)}", err=True)
        raise typer.Exit(4)
    typer.echo(f"verified: {manifest} matches its data and its MLflow record.")


@app.command()
def reproduce(
    manifest: Annotated[Path, typer.Argument(help="manifest.json of a published run folder.")],
    output: Annotated[
        Path | None, typer.Option("--output", help="Where to publish the rerun (default: temp).")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Rerun the recorded pipeline from the recorded input, config and seed; compare bytes."""
    try:
        from fairdistill.flows.logging_setup import configure_console
        from fairdistill.flows.reproduce import reproduce as reproduce_run

        configure_console(debug=debug)
        result = reproduce_run(manifest, output=output)
    except Exception as error:
        fail(error, debug=debug)
        return
    typer.echo(f"recorded   sha256 {result.recorded_sha256}")
    typer.echo(f"reproduced sha256 {result.reproduced_sha256} ({result.reproduced_folder})")
    if not result.identical:
        typer.echo("error: the rerun is NOT byte-identical to the published data", err=True)
        raise typer.Exit(4)
    typer.echo("reproduced: byte-identical.")


@app.command()
def promote(
    model: Annotated[
        str, typer.Option("--model", help="Registered model name: fairdistill-<dataset>.")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why this version should serve (kept in the audit log).")
    ],
    version: Annotated[
        int | None,
        typer.Option("--version", help="Version to promote (default: the 'candidate' version)."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who approves (default: your user name)."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Move the model's 'champion' alias to a version, recording who, when and why."""
    try:
        from fairdistill.tasks.services.registry import promote as promote_version

        move = promote_version(
            model, version, reason=reason, actor=actor, tracking_uri=load_settings().tracking_uri
        )
    except Exception as error:
        fail(error, debug=debug)
        return
    previous = f"version {move.from_version}" if move.from_version is not None else "no version"
    typer.echo(
        f"{move.model}@{move.alias}: {previous} -> version {move.to_version} "
        f"(by {move.actor} at {move.at})"
    )


@app.command()
def datasets() -> None:
    """List the bundled datasets."""
    from fairdistill.data import BUNDLED_DATASETS, bundled_dataset

    for name in BUNDLED_DATASETS:
        typer.echo(f"{name:<10} {bundled_dataset(name).data_path}")


@app.command("config-schema")
def config_schema() -> None:
    """Print the JSON schema of the run configuration (every option and its default)."""
    from fairdistill.models.config import RunConfig

    typer.echo(json.dumps(RunConfig.model_json_schema(), indent=2))


def main() -> None:
    try:
        prepare_environment(load_settings())
    except FairdistillError as error:
        typer.echo(f"error: {one_sentence(error)}", err=True)
        exit_now(error.exit_code)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        exit_now(130)
    except SystemExit as finished:
        exit_now(finished.code)
    exit_now(0)


def exit_now(code: int | str | None) -> NoReturn:
    """Exit once the exit handlers ran, skipping the interpreter's teardown of its modules.

    Tearing down the thousands of modules torch, MLflow, Prefect and Great Expectations
    import took 3 to 6 s after every run on two cores, with nothing left to do: every file
    is closed (published ones fsynced), MLflow runs are ended, and the exit handlers that
    matter (Prefect's services, the temporary server, logging) still run first.
    """
    if isinstance(code, str):
        typer.echo(code, err=True)
    if "prefect.logging.handlers" in sys.modules:
        from fairdistill.flows.logging_setup import flush_logs_to_server

        flush_logs_to_server()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
