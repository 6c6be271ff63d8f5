"""The S3 CSV files: the four header rows, rows under them, and reading them back (FORMATS.md §4).

Writing: UTF-8 without BOM (``old``: every non-ASCII character becomes a space), every non-null
field double-quoted and a null written as nothing between the commas (so ``""`` is an empty
string and stays one), ``\\n`` line ends, one header row, one record kind per file; booleans
and timestamps follow the version; volumes at 6 decimals and ``cost`` at 10, as the platform
writes them; other numbers never in exponent notation; ``detail`` as compact JSON, or as its
text when it is a string.

Reading: the header row tells the kind and whether the file is legacy (``old``/``migrated``) or
``new``; columns are matched by name, so reordered or added columns still read (an unknown
column becomes a root field holding its text). An unquoted empty field is null, a quoted one an
empty string. Each row is then parsed like any JSON record, so a file written here reads back
as the records it was written from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from schemas.csv_columns import LAYOUTS, SCALES, Column, csv_header
from schemas.csv_rows import csv_row, csv_row_stored
from schemas.decode import MAX_INTEGER_DIGITS, loads
from schemas.errors import InvalidValue, MalformedRecord, RecordError
from schemas.kinds import Kind, Record, Version
from schemas.parse import parse_record

__all__ = ["csv_header", "csv_row", "csv_row_stored", "read_csv", "render_csv"]


def render_csv(records: Iterable[Record], kind: Kind, version: Version) -> str:
    """A whole CSV file: the header row, then one row per record."""
    return csv_header(kind, version) + "".join(csv_row(r, kind, version) for r in records)


def read_csv(lines: Iterable[str]) -> Iterator[Record]:
    """Read a CSV file written under one of the four headers into canonical records.

    Raises ``RecordError`` with the row's index (0-based, header not counted) for a row that
    cannot be read, and ``MalformedRecord`` for a header that is none of the four layouts.
    """
    rows = _rows(lines)
    try:
        header = next(rows)
    except StopIteration:
        return
    except _NotCsv as exc:
        raise MalformedRecord(f"the CSV header row cannot be read: {exc}") from None
    names = [name or "" for name in header]
    kind, columns = _layout(names)
    index = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except _NotCsv as exc:
            raise MalformedRecord(f"the CSV row cannot be read: {exc}", index) from None
        if row == [None]:
            continue
        try:
            yield parse_record(_record(row, columns, names), kind)
        except RecordError as exc:
            raise exc.at(index) from None
        index += 1


class _NotCsv(ValueError):
    """Text that is not CSV (a stray quote, an unclosed quoted field)."""


_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def _rows(lines: Iterable[str]) -> Iterator[list[str | None]]:
    """Split CSV text into rows of fields: ``None`` for an unquoted empty field, else its text.

    (The standard ``csv`` module cannot tell ``,,`` from ``,"",`` before Python 3.12.) A row
    ends at a line end outside quotes; ``_NotCsv`` for a row that is not CSV.
    """
    text = ""
    quoted = False
    for line in lines:
        text += line
        quoted ^= line.count('"') % 2 == 1
        if not quoted:
            yield _fields(text)
            text = ""
    if text:
        raise _NotCsv("a quoted field is not closed at the end of the file")


def _fields(text: str) -> list[str | None]:
    end = len(text.rstrip("\r\n"))
    fields: list[str | None] = []
    position = 0
    while True:
        match = _FIELD.match(text, position, end)
        assert match is not None  # the second alternative matches the empty string
        quoted, plain = match.groups()
        fields.append(quoted.replace('""', '"') if quoted is not None else plain or None)
        position = match.end()
        if position == end:
            return fields
        if text[position] != ",":
            raise _NotCsv(f"unexpected {text[position]!r} after field {len(fields)}")
        position += 1


def _layout(header: list[str]) -> tuple[Kind, list[Column | None]]:
    names = set(header)
    if "event_type_id" in names:
        kind = Kind.EVENT
        legacy = "event_source_name" in names or "msisdn_msisdn" in names
    elif "traffic_type_id" in names:
        kind = Kind.USAGE
        legacy = "event_start_timestamp" in names
    else:
        raise MalformedRecord(
            "the CSV header row is neither events (no 'event_type_id') nor usage "
            "(no 'traffic_type_id')"
        )
    by_name = {column.name: column for column in LAYOUTS[kind, legacy]}
    return kind, [by_name.get(name) for name in header]


def _record(row: list[str | None], columns: list[Column | None], header: list[str]) -> Record:
    if len(row) != len(header):
        raise MalformedRecord(f"has {len(row)} fields, the header has {len(header)}")
    tree: Record = {}
    documents: list[tuple[tuple[str, ...], Any]] = []
    for text, column, name in zip(row, columns, header, strict=True):
        if column is None:
            tree[name] = text
            continue
        if column.type == "json":  # a JSON document is data, not columns: it is never nulled
            documents.append((column.path, _document(text)))
            continue
        node = tree
        for key in column.path[:-1]:
            node = node.setdefault(key, {})
        node[column.path[-1]] = _value(text, column)
    tree = _nulled(tree, _REQUIRED_ENTITIES)
    for path, value in documents:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _document(text: str | None) -> Any:
    """``detail``: JSON when the cell holds an object, an array or a JSON string, else its text."""
    if text is None:
        return None
    try:
        value = loads(text.encode())
    except MalformedRecord:
        return text
    return value if isinstance(value, dict | list | str) else text


def _value(text: str | None, column: Column) -> Any:
    if text is None or (text == "" and column.type != "str"):
        return None
    digits = text.lstrip("-")
    if column.type in ("int", "num") and len(digits) > MAX_INTEGER_DIGITS and digits.isdigit():
        raise InvalidValue(".".join(column.path), f"has more than {MAX_INTEGER_DIGITS} digits")
    try:
        if column.type == "int":
            return int(text)
        if column.type == "num":
            return _number(text)
        if column.type in SCALES:
            return _decimal(text)
        if column.type == "bool":
            return {"1": True, "true": True, "0": False, "false": False}[text.lower()]
    except (ValueError, KeyError):
        raise InvalidValue(
            ".".join(column.path), f"is {text!r}, not a valid {column.type}"
        ) from None
    return text


def _decimal(text: str) -> int | float:
    """A fixed-scale decimal: a whole number (``"1.000000"``, an SMS count) reads as an integer."""
    whole, _, fraction = text.partition(".")
    if fraction.strip("0") == "" and whole.lstrip("-").isdigit():
        return int(whole)
    return _number(text)


def _number(text: str) -> int | float:
    if text.lstrip("-").isdigit():
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_REQUIRED_ENTITIES = frozenset(("event_type", "organisation", "traffic_type", "volume"))


def _nulled(tree: Record, kept: frozenset[str] = frozenset()) -> Record:
    """An entity whose every column is empty is null, unless it is ``kept`` (the root's
    required entities: ``volume`` of only null amounts is still a volume)."""
    for key, value in tree.items():
        if isinstance(value, dict):
            inner = _nulled(value)
            empty = key not in kept and all(v is None for v in inner.values())
            tree[key] = None if empty else inner
    return tree
