"""Read an input table (CSV, TSV or parquet) into polars, or fail with one clear error.

Every way a file can be unreadable as a table (missing, empty, header only, not UTF-8,
split by another separator, repeated column names, corrupt parquet) becomes a single
:class:`DataReadError` that names the file, the rule and what to do.

A CSV file's separator is the one given, else the one its extension implies, unless the
header shows another one plainly (a ``.csv`` exported with semicolons, as spreadsheets in
many countries write it); numbers written with a decimal comma in such a file are read as
numbers.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from fairdistill.models.errors import DataReadError

SEPARATOR_BY_SUFFIX: dict[str, str] = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = (*SEPARATOR_BY_SUFFIX, *PARQUET_SUFFIXES)
DEFAULT_NULL_VALUES: tuple[str, ...] = ("", "NA")
# Enough rows that a column mixing numbers and text is seen as text, not cut off as numbers.
INFER_SCHEMA_ROWS = 10_000
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tabs", "|": "'|'"}
# Lines whose field count a detected separator must reproduce: the header and a few rows.
_SNIFF_LINES = 20
# A number written with a decimal comma ("1,5", "-1234,25"), as semicolon files hold them.
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(,\d+)?$")


def read_table(
    path: str | Path,
    *,
    separator: str | None = None,
    null_values: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Read a ``.csv`` (comma), ``.tsv``/``.txt`` (tab) or ``.parquet`` file.

    ``separator`` overrides the one implied by the extension (and is never second-guessed);
    without it, a header that plainly splits on another separator is read with that one.
    ``null_values`` lists the strings read as null in CSV files (default: empty fields and
    ``NA``); every other value, ``?`` included, is kept as written.
    """
    path = Path(path)
    suffix = _check_is_table_file(path)
    if suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    else:
        if separator is not None:
            _check_separator_value(path, separator)
        frame = _read_delimited(
            path,
            separator=separator or _detected_separator(path, SEPARATOR_BY_SUFFIX[suffix]),
            null_values=DEFAULT_NULL_VALUES if null_values is None else tuple(null_values),
            given=separator is not None,
        )
    if frame.height == 0:
        raise DataReadError(
            f"The table has a header ({frame.width} columns) but no data rows",
            file=str(path),
            rule="input-has-rows",
            hint="check that the export wrote the rows, not only the column names",
        )
    return frame


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in chunks so large files need little memory."""
    path = Path(path)
    _check_exists(path)
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataReadError(
            "The input file does not exist",
            file=str(path),
            rule="input-exists",
            hint="check the path (relative paths start from the current directory)",
        )
    if path.is_dir():
        raise DataReadError(
            "The input is a directory, not a file",
            file=str(path),
            rule="input-is-file",
            hint="pass the path of one .csv, .tsv or .parquet file inside it",
        )
    if not path.is_file():
        # A pipe or device would block or never end; an export is always a regular file.
        raise DataReadError(
            "The input is not a regular file (a pipe, socket or device)",
            file=str(path),
            rule="input-is-file",
            hint="save the table to a .csv, .tsv or .parquet file and pass its path",
        )


def _check_is_table_file(path: Path) -> str:
    _check_exists(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataReadError(
            f"Files ending in '{path.suffix or '(no extension)'}' are not supported "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})",
            file=str(path),
            rule="input-format",
            hint="convert the table to CSV or parquet, or rename it if the extension is wrong",
        )
    if path.stat().st_size == 0:
        raise DataReadError(
            "The input file is empty (0 bytes)",
            file=str(path),
            rule="input-not-empty",
            hint="check that the export or download finished",
        )
    return suffix


# ---------------------------------------------------------------- parquet


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as error:
        raise _corrupt_parquet(path, error) from error
    _check_unique_names(path, names)
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as error:
        raise _corrupt_parquet(path, error) from error


def _corrupt_parquet(path: Path, error: Exception) -> DataReadError:
    return DataReadError(
        f"The file cannot be read as parquet: {_first_line(error)}",
        file=str(path),
        rule="input-parquet",
        hint="the file is damaged or not parquet; write it again (e.g. DataFrame.write_parquet)",
    )


# ---------------------------------------------------------------- CSV / TSV


def _read_delimited(
    path: Path, *, separator: str, null_values: tuple[str, ...], given: bool
) -> pl.DataFrame:
    header = _raw_header(path, separator)
    _check_separator(path, header, separator, given=given)
    _check_unique_names(path, header)
    frame = _read_csv_text(path, separator, null_values, decimal_comma=False)
    if separator != "," and _holds_decimal_commas(frame):
        return _read_csv_text(path, separator, null_values, decimal_comma=True)
    return frame


def _read_csv_text(
    path: Path, separator: str, null_values: tuple[str, ...], *, decimal_comma: bool
) -> pl.DataFrame:
    try:
        return _polars_read_csv(path, separator, null_values, INFER_SCHEMA_ROWS, decimal_comma)
    except pl.exceptions.ComputeError as error:
        if "could not parse" not in str(error):
            raise _csv_error(path, error) from error
    # A column looked numeric in the first rows and holds text later: read it as text, so
    # validation can point at the values instead of the reader failing.
    try:
        return _polars_read_csv(path, separator, null_values, None, decimal_comma)
    except pl.exceptions.ComputeError as error:
        raise _csv_error(path, error) from error


def _holds_decimal_commas(frame: pl.DataFrame) -> bool:
    """Text columns that are all numbers with decimal commas, and no number with a point.

    Both at once would be two conventions in one file: then nothing is reinterpreted.
    """
    if any(dtype.is_float() for dtype in frame.schema.values()):
        return False
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame.get_column(name).drop_nulls()
        commas = values.len() > 0 and values.str.contains(",").any()
        if commas and values.str.contains(_DECIMAL_COMMA.pattern).all():
            return True
    return False


def _polars_read_csv(
    path: Path,
    separator: str,
    null_values: tuple[str, ...],
    infer_rows: int | None,
    decimal_comma: bool,
) -> pl.DataFrame:
    try:
        return pl.read_csv(
            path,
            separator=separator,
            infer_schema_length=infer_rows,
            null_values=list(null_values),
            decimal_comma=decimal_comma,
        )
    except pl.exceptions.NoDataError as error:
        raise DataReadError(
            "The input file holds no header and no rows",
            file=str(path),
            rule="input-not-empty",
            hint="check that the export or download finished",
        ) from error


def _raw_header(path: Path, separator: str) -> list[str]:
    """The column names exactly as written, before any reader renames duplicates."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return next(csv.reader(stream, delimiter=separator), [])
    except UnicodeDecodeError as error:
        raise _not_utf8(path) from error


def _check_separator_value(path: Path, separator: str) -> None:
    if len(separator.encode("utf-8")) != 1 or separator in '\r\n"':
        raise DataReadError(
            f"The separator {separator!r} cannot split a CSV file: it must be one character "
            "(other than a quote or a line break)",
            file=str(path),
            rule="input-separator",
            hint="give one character such as ',' or ';' (--separator, or separator in the spec)",
        )


def _detected_separator(path: Path, default: str) -> str:
    """``default``, unless the first lines split into one column by it but into the same
    number of columns (two or more) by exactly one other separator."""
    lines = _first_lines(path)
    if not lines or len(_fields(lines[0], default)) != 1:
        return default
    plain = []
    for candidate in _SEPARATOR_NAMES:
        counts = {len(_fields(line, candidate)) for line in lines}
        if candidate != default and len(counts) == 1 and counts.pop() >= 2:
            plain.append(candidate)
    return plain[0] if len(plain) == 1 else default


def _first_lines(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            lines = [line for _, line in zip(range(_SNIFF_LINES), stream, strict=False)]
    except UnicodeDecodeError:
        return []  # reported by the reader, with the offending byte
    return [line.rstrip("\r\n") for line in lines if line.strip()]


def _fields(line: str, separator: str) -> list[str]:
    return next(csv.reader([line], delimiter=separator), [])


def _check_separator(path: Path, header: list[str], separator: str, *, given: bool) -> None:
    if len(header) != 1:
        return
    for candidate, label in _SEPARATOR_NAMES.items():
        if candidate != separator and candidate in header[0]:
            used = _SEPARATOR_NAMES.get(separator, repr(separator))
            where = "the separator given" if given else "the separator its extension implies"
            raise DataReadError(
                f"The header reads as one column '{header[0][:60]}': the file looks "
                f"separated by {label}, not by {used} ({where})",
                file=str(path),
                rule="input-separator",
                hint=_separator_hint(candidate),
            )


def _separator_hint(separator: str) -> str:
    if separator == "\t":
        return "save the file with the extension .tsv, which is read tab-separated"
    return (
        f"give the separator it uses: --separator '{separator}' on the command line or "
        f"separator: '{separator}' in the spec"
    )


def _check_unique_names(path: Path, names: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DataReadError(
                f"The column name '{name}' appears more than once "
                f"(columns {seen[name]} and {position})",
                file=str(path),
                column=name,
                rule="input-unique-columns",
                hint="rename or drop the repeated column so every name is unique",
            )
        seen[name] = position


def _csv_error(path: Path, error: Exception) -> DataReadError:
    if "utf-8" in str(error).lower():
        return _not_utf8(path)
    return DataReadError(
        f"The file cannot be read as a table: {_first_line(error)}",
        file=str(path),
        rule="input-csv",
        hint="check that every row has as many fields as the header and that quotes are closed",
    )


def _not_utf8(path: Path) -> DataReadError:
    where = _first_invalid_utf8(path)
    position = (
        f": byte 0x{where[2]:02x} at line {where[1]} (byte offset {where[0]})" if where else ""
    )
    return DataReadError(
        f"The file is not UTF-8 text{position}",
        file=str(path),
        rule="input-utf8",
        hint="save it again as UTF-8 (e.g. iconv -f latin1 -t utf-8 IN > OUT)",
    )


def _first_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line number, byte) of the first byte that is not valid UTF-8."""
    offset = 0
    # Splitting on b"\n" never cuts a UTF-8 sequence: its bytes are all >= 0x80.
    with path.open("rb") as stream:
        for line_number, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return offset + error.start, line_number, line[error.start]
            offset += len(line)
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
