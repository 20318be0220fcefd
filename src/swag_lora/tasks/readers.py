"""File readers: jsonl, JSON arrays, parquet and headerless CSV, each record with its location.

Every reader yields ``(where, value)`` pairs. ``value`` is the decoded record, or a
:class:`DataFormatError` for a record that could not be decoded but after which reading can go
on (a bad jsonl line). A fault that ends the file (a JSON array that stops parsing, a CSV quote
that never closes, an unreadable parquet file) is raised at once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import DataFormatError, Where

__all__ = [
    "jsonl_records",
    "read_csv",
    "read_csv_records",
    "read_json",
    "read_jsonl",
    "read_parquet",
    "reader_for",
]


_JSON_SPACE = re.compile(r"[ \t\n\r]*")

Item = tuple[Where, object]


def _decode(data: bytes, path: str) -> str:
    """The file's text (UTF-8, a byte-order mark allowed); a decoding fault names its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataFormatError(f"not UTF-8 text ({err.reason})", path=path, line=line) from None


def read_jsonl(path: str | Path) -> Iterator[Item]:
    """One JSON value per line; blank lines are not records."""
    yield from jsonl_records(Path(path).read_bytes(), str(path))


def jsonl_records(data: bytes, name: str) -> Iterator[Item]:
    """JSON lines from bytes (a file's or standard input's), located under ``name``."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = Where(name, line=number)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield where, where.fail(None, f"not UTF-8 text ({err.reason})")
            continue
        try:
            yield where, json.loads(text)
        except json.JSONDecodeError as err:
            yield where, where.fail(None, f"invalid JSON: {err.msg} (column {err.colno})")


def read_json(path: str | Path) -> Iterator[Item]:
    """A ``.json`` file: one JSON array of records, or (as ``datasets`` writes it) JSON lines."""
    name = str(path)
    text = _decode(Path(path).read_bytes(), name)
    start = _JSON_SPACE.match(text).end()
    if start < len(text) and text[start] == "[":
        yield from _json_array(text, start, name)
    else:
        yield from read_jsonl(path)


def _json_array(text: str, pos: int, name: str) -> Iterator[Item]:
    decoder = json.JSONDecoder()
    line, counted = 1, 0

    def line_at(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    def fail(at: int, reason: str) -> DataFormatError:
        return DataFormatError(reason, path=name, line=line_at(at))

    pos = _JSON_SPACE.match(text, pos + 1).end()
    index = 0
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            if pos >= len(text):
                raise fail(pos, "invalid JSON: the array is not closed")
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"invalid JSON in record {index}: {err.msg} (column {err.colno})",
                    path=name,
                    line=err.lineno,
                ) from None
            yield Where(name, line=line_at(pos), record=index), value
            index += 1
            pos = _JSON_SPACE.match(text, end).end()
            if pos < len(text) and text[pos] == ",":
                pos = _JSON_SPACE.match(text, pos + 1).end()
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            raise fail(pos, f"invalid JSON after record {index - 1}: expected ',' or ']'")
    pos = _JSON_SPACE.match(text, pos).end()
    if pos < len(text):
        raise fail(pos, "invalid JSON: text after the closing ']'")


def read_parquet(path: str | Path) -> Iterator[Item]:
    """Rows of a parquet file as dicts, located by record index."""
    name = str(path)
    try:
        import pyarrow.parquet as pq  # optional: only parquet files need it (it comes with datasets)

        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise DataFormatError(
            f"not a readable parquet file ({type(err).__name__}: {err})", path=name
        ) from None
    for index, record in enumerate(table.to_pylist()):
        yield Where(name, record=index), record


def read_csv(path: str | Path) -> Iterator[Item]:
    """Rows of a headerless CSV file as lists of strings, located by the line each row starts on.

    Quoted fields may span lines and the last row may lack its newline; blank lines are not rows.
    """
    name = str(path)
    text = _decode(Path(path).read_bytes(), name)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(f"invalid CSV: {err}", path=name, line=last + 1) from None
        start, last = last + 1, reader.line_num
        if not fields:
            continue
        yield Where(name, line=start), fields


def read_csv_records(path: str | Path, delimiter: str = ",") -> Iterator[Item]:
    """Rows of a CSV (or, with ``delimiter="\\t"``, TSV) file whose first row names the columns, as
    dicts of strings, located by the line each row starts on.

    The header must name every column once; a row with another number of fields is an error
    that names its line. Quoted fields may span lines; blank lines are not rows.
    """
    name = str(path)
    text = _decode(Path(path).read_bytes(), name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(f"invalid CSV: {err}", path=name, line=last + 1) from None
        start, last = last + 1, reader.line_num
        if not fields:
            continue
        where = Where(name, line=start)
        if header is None:
            header = [f.strip() for f in fields]
            for i, column in enumerate(header):
                if not column:
                    raise where.fail(f"<header>[{i}]", "empty column name in the header row")
                if column in header[:i]:
                    raise where.fail(f"<header>[{i}]", f"column name {column!r} appears twice in the header row")
            continue
        if len(fields) != len(header):
            yield where, where.fail(
                "<row>", f"expected {len(header)} fields ({', '.join(header)}), found {len(fields)}"
            )
            continue
        yield where, dict(zip(header, fields))


def reader_for(path: Path):
    """The reader for a file, chosen by its extension."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl
    if suffix == ".json":
        return read_json
    if suffix == ".parquet":
        return read_parquet
    if suffix == ".csv":
        return read_csv
    raise ValueError(f"{path}: no reader for files ending in {suffix!r}")
