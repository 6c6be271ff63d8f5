"""JSON input: one object, an array of objects, or NDJSON, read exactly.

Integers beyond 64 bits (a 20-digit ICCID written as a number) stay exact: orjson would turn
them into floats, so a document that holds such a literal is read by the standard library's
parser instead, which is slower but keeps every digit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from schemas.errors import MalformedRecord, RecordError
from schemas.kinds import Kind, Record, Version
from schemas.parse import parse_record

__all__ = ["iter_json", "loads", "parse_json"]

_DIGIT_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_RUN = b"0" * 19
_BEFORE_NUMBER = frozenset(b":[,- \t\r\n")


def loads(data: bytes) -> Any:
    """Parse one JSON document, keeping every integer exact; raise ``MalformedRecord``."""
    try:
        if not _may_hold_long_integer(data):
            return orjson.loads(data)
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:  # orjson's error is a subclass
        raise MalformedRecord(f"is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedRecord("is not valid UTF-8") from None


def iter_json(lines: Iterable[bytes]) -> Iterator[Any | RecordError]:
    """Yield each JSON value of a body or file given as lines, or the error of each bad one.

    The framing is told from the input: a leading ``[`` is one array of records; a first line
    that is a whole JSON value starts NDJSON (one record per non-blank line); anything else is
    one document spread over lines (a pretty-printed object). Errors carry the record's index.
    """
    rest = iter(lines)
    first = next((line for line in rest if line.strip()), None)
    if first is None:
        return
    if first.lstrip().startswith(b"["):
        yield from _array(first + b"".join(rest))
        return
    try:
        value = loads(first)
    except MalformedRecord:
        whole = first + b"".join(rest)
        try:
            yield loads(whole)
        except MalformedRecord as exc:
            yield exc.at(0)
        return
    yield value
    index = 1
    for line in rest:
        if not line.strip():
            continue
        try:
            yield loads(line)
        except MalformedRecord as exc:
            yield exc.at(index)
        index += 1


def parse_json(
    lines: Iterable[bytes], kind: Kind | None = None, version: Version | None = None
) -> Iterator[Record | RecordError]:
    """``iter_json`` followed by ``parse_record`` on each value: canonical records or errors."""
    for index, value in enumerate(iter_json(lines)):
        if isinstance(value, RecordError):
            yield value
            continue
        try:
            yield parse_record(value, kind, version)
        except RecordError as exc:
            yield exc.at(index)


def _array(data: bytes) -> Iterator[Any | RecordError]:
    try:
        values = loads(data)
    except MalformedRecord as exc:
        yield exc.at(0)
        return
    yield from values


def _may_hold_long_integer(data: bytes) -> bool:
    """Whether ``data`` may hold an integer literal orjson cannot keep exact (19+ digits).

    Runs of 19+ digits inside strings (ICCIDs written as strings) are told apart by the byte
    before the run; a run that may be either counts as a literal, which only costs speed.
    """
    mask = data.translate(_DIGIT_MASK)
    start = mask.find(_RUN)
    while start != -1:
        while start and mask[start - 1] == 0x30:
            start -= 1
        if start == 0 or data[start - 1] in _BEFORE_NUMBER:
            return True
        end = mask.find(b" ", start)
        if end == -1:
            return False
        start = mask.find(_RUN, end)
    return False


def _no_constant(name: str) -> Any:
    raise MalformedRecord(f"is not valid JSON: {name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedRecord(f"is not valid JSON: {text} is out of range")
    return value
