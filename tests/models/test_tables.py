"""read_table reads good tables and refuses bad ones with one clear error each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from fairdistill.models.errors import DataReadError
from fairdistill.models.tables import file_sha256, read_table


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def read_error(path: Path, **options: object) -> DataReadError:
    with pytest.raises(DataReadError) as caught:
        read_table(path, **options)  # type: ignore[arg-type]
    assert caught.value.file == str(path)
    assert caught.value.hint
    return caught.value


# ---------------------------------------------------------------- good input


def test_reads_csv_with_types_and_nulls(tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", "age,sex,score\n30,F,1.5\n,M,NA\n41,?,2.0\n")
    frame = read_table(path)
    assert frame.schema == pl.Schema({"age": pl.Int64, "sex": pl.String, "score": pl.Float64})
    assert frame.get_column("age").to_list() == [30, None, 41]
    assert frame.get_column("score").to_list() == [1.5, None, 2.0]
    assert frame.get_column("sex").to_list() == ["F", "M", "?"]  # '?' is kept as written


def test_null_values_can_be_chosen(tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", "sex,code\n?,NA\nF,x\n")
    frame = read_table(path, null_values=["?"])
    assert frame.get_column("sex").to_list() == [None, "F"]
    assert frame.get_column("code").to_list() == ["NA", "x"]


def test_reads_tsv_txt_and_parquet(tmp_path: Path) -> None:
    expected = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert read_table(write(tmp_path / "t.tsv", "a\tb\n1\tx\n2\ty\n")).equals(expected)
    assert read_table(write(tmp_path / "t.txt", "a\tb\n1\tx\n2\ty\n")).equals(expected)
    expected.write_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet").equals(expected)
    assert read_table(write(tmp_path / "t.csv", "a;b\n1;x\n2;y\n"), separator=";").equals(expected)


def test_column_mixing_numbers_and_text_is_read_as_text(tmp_path: Path) -> None:
    # The text appears after the rows used to infer types: the reader must not fail.
    path = write(tmp_path / "mixed.csv", "x\n" + "1\n" * 10_050 + "abc\n")
    column = read_table(path).get_column("x")
    assert column.dtype == pl.String
    assert column[-1] == "abc" and column.len() == 10_051


def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbfage,sex\n1,F\n")
    assert read_table(path).columns == ["age", "sex"]


def test_file_sha256_streams_the_bytes(tmp_path: Path) -> None:
    content = b"a,b\n" + b"1,2\n" * 100_000
    path = write(tmp_path / "big.csv", content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    with pytest.raises(DataReadError) as caught:
        file_sha256(tmp_path / "absent.csv")
    assert caught.value.rule == "input-exists"


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    error = read_error(tmp_path / "absent.csv")
    assert error.rule == "input-exists"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "table.csv"
    folder.mkdir()
    assert read_error(folder).rule == "input-is-file"


def test_unsupported_extension(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "table.xlsx", "a,b\n1,2\n"))
    assert error.rule == "input-format"
    assert ".xlsx" in error.message and ".parquet" in error.message


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    error = read_error(write(tmp_path / name, b""))
    assert error.rule == "input-not-empty"
    assert "0 bytes" in error.message


def test_header_only(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "header.csv", "age,sex\n"))
    assert error.rule == "input-has-rows"
    pl.DataFrame({"a": []}, schema={"a": pl.Int64}).write_parquet(tmp_path / "header.parquet")
    assert read_error(tmp_path / "header.parquet").rule == "input-has-rows"


def test_non_utf8_names_line_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.csv", "name,city\nAnna,Köln\nBo,Zürich\n".encode("latin-1"))
    error = read_error(path)
    assert error.rule == "input-utf8"
    assert "line 2" in error.message and "byte offset 16" in error.message
    assert "0xf6" in error.message


def test_non_utf8_header(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.csv", "größe,x\n1,2\n".encode("latin-1"))
    error = read_error(path)
    assert error.rule == "input-utf8" and "line 1" in error.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("semicolon.csv", "age;sex;income\n30;F;1\n41;M;2\n"),
        ("tabs.csv", "age\tsex\tincome\n30\tF\t1\n41\tM\t2\n"),
        ("commas.tsv", "age,sex,income\n30,F,1\n41,M,2\n"),
        ("pipes.csv", "age|sex|income\n30|F|1\n41|M|2\n"),
    ],
)
def test_a_plainly_other_separator_is_detected(tmp_path: Path, name: str, content: str) -> None:
    expected = pl.DataFrame({"age": [30, 41], "sex": ["F", "M"], "income": [1, 2]})
    assert read_table(write(tmp_path / name, content)).equals(expected)


def test_the_separator_given_is_never_second_guessed(tmp_path: Path) -> None:
    path = write(tmp_path / "semicolon.csv", "age;sex;income\n30;F;1\n")
    error = read_error(path, separator=",")
    assert error.rule == "input-separator"
    assert "looks separated by ';', not by ',' (the separator given)" in error.message
    assert "--separator ';'" in str(error.hint) and "separator: ';'" in str(error.hint)


def test_a_header_that_splits_no_way_plainly_is_refused(tmp_path: Path) -> None:
    # ';' and '|' both split every line alike: which one the file uses cannot be told.
    path = write(tmp_path / "odd.csv", "age;sex|income\n30;F|1\n")
    error = read_error(path)
    assert error.rule == "input-separator" and "--separator" in str(error.hint)


@pytest.mark.parametrize("separator", [";;", "\n", '"', "§"])
def test_a_separator_must_be_one_plain_character(tmp_path: Path, separator: str) -> None:
    error = read_error(write(tmp_path / "t.csv", "a;b\n1;2\n"), separator=separator)
    assert error.rule == "input-separator" and "one character" in error.message


def test_decimal_commas_of_a_semicolon_file_are_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "eu.csv", "income;age;town\n1234,5;30;Lyon\n-2,25;41;Nice\n7;50;Metz\n")
    frame = read_table(path)
    assert frame.get_column("income").to_list() == [1234.5, -2.25, 7.0]
    assert frame.get_column("town").to_list() == ["Lyon", "Nice", "Metz"]
    # With numbers written with a point as well, nothing is reinterpreted.
    mixed = write(tmp_path / "mixed.csv", "a;b\n1,5;2.5\n3,5;1.0\n")
    assert read_table(mixed).get_column("a").to_list() == ["1,5", "3,5"]


def test_single_column_without_separators_is_fine(tmp_path: Path) -> None:
    assert read_table(write(tmp_path / "one.csv", "age\n1\n2\n")).shape == (2, 1)


def test_duplicated_column_names_in_csv(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "dup.csv", "age,sex,age\n1,F,2\n"))
    assert error.rule == "input-unique-columns"
    assert error.column == "age"
    assert "columns 1 and 3" in error.message


def test_duplicated_column_names_in_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array([1]), pa.array([2])], names=["age", "age"])
    pq.write_table(table, tmp_path / "dup.parquet")
    error = read_error(tmp_path / "dup.parquet")
    assert error.rule == "input-unique-columns" and error.column == "age"


def test_corrupt_parquet(tmp_path: Path) -> None:
    pl.DataFrame({"a": range(1000)}).write_parquet(tmp_path / "good.parquet")
    truncated = (tmp_path / "good.parquet").read_bytes()[:-200]
    error = read_error(write(tmp_path / "bad.parquet", truncated))
    assert error.rule == "input-parquet"
    assert read_error(write(tmp_path / "text.parquet", "a,b\n1,2\n")).rule == "input-parquet"


def test_ragged_rows(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "ragged.csv", "a,b\n1,2\n3,4,5\n"))
    assert error.rule == "input-csv"
    assert "fields" in error.message
