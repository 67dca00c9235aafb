"""Look at a new table and draft its dataset spec: the first step with data of one's own.

``fairdistill inspect DATA`` runs :func:`inspect_table`: it reads the table, prints what each
column holds and what the draft does with it, and writes a commented YAML spec for the user
to check and finish before ``fairdistill run --data DATA --spec SPEC``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fairdistill.models.errors import OutputError
from fairdistill.models.inspection import format_summary, propose_spec
from fairdistill.models.tables import read_table


def inspect_table(
    data: Path,
    *,
    name: str | None = None,
    target: str | None = None,
    positive: str | None = None,
    sensitive: list[str] | None = None,
    separator: str | None = None,
    output: Path | None = None,
    overwrite: bool = False,
    echo: Callable[[str], None] = print,
) -> str:
    """Print a summary of ``data``, write the drafted spec to ``output`` if given, return it.

    ``name`` defaults to the file name without its extension. An existing ``output`` is
    left alone unless ``overwrite`` is true.
    """
    data = Path(data)
    frame = read_table(data, separator=separator)
    draft = propose_spec(
        frame,
        name=name or data.stem,
        target=target,
        positive=positive,
        sensitive=sensitive,
        source=str(data),
    )
    echo(format_summary(frame, draft).rstrip("\n"))
    text = draft.to_yaml()
    if output is not None:
        write_spec(Path(output), text, overwrite=overwrite)
        todo = " and replace every TODO" if draft.todos else ""
        echo(f"Wrote the spec to {output}: check the lines marked CHECK{todo} before using it.")
    return text


def write_spec(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` to ``path``; refuse to replace a file unless ``overwrite``."""
    if path.is_dir():
        raise OutputError(
            "The spec path is a directory",
            file=str(path),
            rule="output-is-file",
            hint="give a file path such as spec.yaml",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Mode "x" refuses in the same step that creates the file: no window to clobber it.
    mode = "w" if overwrite else "x"
    try:
        with path.open(mode, encoding="utf-8") as stream:
            stream.write(text)
    except FileExistsError as error:
        raise OutputError(
            "The spec file already exists and would be overwritten",
            file=str(path),
            rule="output-exists",
            hint="choose another path, or allow overwriting it",
        ) from error
