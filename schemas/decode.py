"""JSON input: one object, an array of objects, or NDJSON, read exactly and within bounds.

msgspec reads the JSON, in C, and keeps integers of any length exact (a 20-digit ICCID written
as a number stays that number). When it refuses a document, orjson is asked why, so that a
refusal names the place and reads the same whatever the reason.

Bounds (README, "Input limits"): a record nests at most ``MAX_DEPTH`` levels of objects and
arrays, an integer literal has at most ``MAX_INTEGER_DIGITS`` digits, a number is finite, and
strings are valid UTF-8 without lone surrogates. A record beyond them is refused like any
unreadable record (``MalformedRecord``), so every record this module returns can be written
back by every renderer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import orjson

from schemas.errors import MalformedRecord, RecordError
from schemas.kinds import Kind, Record, Version
from schemas.parse import parse_record

__all__ = ["MAX_DEPTH", "MAX_INTEGER_DIGITS", "iter_json", "loads", "loads_stored", "parse_json"]

MAX_DEPTH = 64
"""The deepest nesting of objects and arrays in a record (the record itself is level 1)."""
MAX_INTEGER_DIGITS = 100
"""The most digits an integer literal may have (a 20-digit ICCID has 20)."""

_DECODER = msgspec.json.Decoder()
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else 0x7B if b in b"{[" else 0x20 for b in range(256))
"""Digits → ``0``, ``{`` and ``[`` → ``{``, anything else → a space: one pass over the input
tells both where the nesting bound and where the digits bound may be crossed."""
_LONG_RUN = b"0" * (MAX_INTEGER_DIGITS + 1)
_LIMIT = 10**MAX_INTEGER_DIGITS
_CONTAINERS = (dict, list)


class _TooDeep(MalformedRecord):
    """Valid JSON, nested deeper than ``MAX_DEPTH``."""

    def __init__(self, index: int | None = None) -> None:
        super().__init__(f"nests objects and arrays deeper than {MAX_DEPTH} levels", index)


def loads(data: bytes) -> Any:
    """Parse one JSON document within the bounds, keeping every integer exact; raise
    ``MalformedRecord``."""
    try:
        value = _DECODER.decode(data)
    except _UNREADABLE as exc:
        raise _refused(data, exc) from None
    mask = data.translate(_MASK)
    if mask.count(b"{") > MAX_DEPTH and _depth_over(value, MAX_DEPTH):  # the count bounds it
        raise _TooDeep
    if mask.find(_LONG_RUN) != -1:  # digits in strings count too: that only costs a walk
        _check_digits(value)
    return value


def loads_stored(data: bytes) -> Any:
    """Read back what this format layer wrote (a stored record's canonical bytes): exactly, and
    without the bounds of ``loads``, which the record was held to when it was first read."""
    return _DECODER.decode(data)


def iter_json(lines: Iterable[bytes]) -> Iterator[Any | RecordError]:
    """Yield each JSON value of a body or file given as lines, or the error of each bad one.

    The framing is told from the input: a leading ``[`` is one array of records; a first line
    that is a whole JSON value starts NDJSON (one record per non-blank line); anything else is
    one document spread over lines (a pretty-printed object). Errors carry the record's index.
    """
    head, rest = _framed(lines)
    yield from head
    index = len(head)
    for line in rest:
        if not line or line.isspace():  # not ``strip()``: that copies every line
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
    head, rest = _framed(lines)
    for index, value in enumerate(head):
        if isinstance(value, RecordError):
            yield value
            continue
        try:
            yield parse_record(value, kind, version)
        except RecordError as exc:
            yield exc.at(index)
    index = len(head)
    for line in rest:  # NDJSON: read and checked in one loop, the common case
        if not line or line.isspace():  # not ``strip()``: that copies every line
            continue
        try:
            yield parse_record(loads(line), kind, version)
        except RecordError as exc:
            yield exc.at(index)
        index += 1


def _framed(lines: Iterable[bytes]) -> tuple[list[Any | RecordError], Iterator[bytes]]:
    """The values (or errors) read to tell the framing: the elements of an array, the one
    document spread over lines, or the first record of NDJSON; and the lines left to read one
    record each (none unless NDJSON)."""
    rest = iter(lines)
    first = next((line for line in rest if line and not line.isspace()), None)
    if first is None:
        return [], rest
    if first.lstrip().startswith(b"["):
        return _array(first + b"".join(rest)), rest
    try:
        return [loads(first)], rest
    except _TooDeep as exc:
        return [exc.at(0)], rest
    except MalformedRecord:
        whole = first + b"".join(rest)
        try:
            return [loads(whole)], rest
        except MalformedRecord as exc:
            return [exc.at(0)], rest


def _array(data: bytes) -> list[Any | RecordError]:
    """The elements of an array. An element nested too deep ends the array with its error:
    the elements before it are not returned either."""
    try:
        values: list[Any] = _DECODER.decode(data)
    except _UNREADABLE as exc:
        return [_refused(data, exc).at(0)]
    mask = data.translate(_MASK)
    if mask.count(b"{") > MAX_DEPTH + 1:
        for index, value in enumerate(values):
            if _depth_over(value, MAX_DEPTH):
                return [_TooDeep(index)]
    if mask.find(_LONG_RUN) != -1:
        try:
            _check_digits(values)
        except MalformedRecord as exc:
            return [exc.at(0)]
    return values


def _refused(data: bytes, exc: BaseException) -> MalformedRecord:
    """Why ``data`` cannot be read: invalid JSON or UTF-8, a lone surrogate, NaN or infinity,
    a number beyond a double, or nesting beyond what a reader follows."""
    if isinstance(exc, RecursionError):
        return _TooDeep()
    reason: BaseException = exc
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as refusal:
        reason = refusal
    text = str(reason)
    if text.startswith("depth limit exceeded"):
        return _TooDeep()
    if text.startswith(("number is infinity", "Number out of range", "Integer value out of")):
        return MalformedRecord(
            f"holds a number that is out of range (integers have at most"
            f" {MAX_INTEGER_DIGITS} digits, numbers are finite): {reason}"
        )
    return MalformedRecord(f"is not valid JSON: {reason}")


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays deeper than ``limit`` levels."""
    stack = [(value, 1)] if type(value) in _CONTAINERS else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        inners = node.values() if type(node) is dict else node
        stack.extend((inner, depth + 1) for inner in inners if type(inner) in _CONTAINERS)
    return False


def _check_digits(value: Any) -> None:
    """Refuse an integer of more than ``MAX_INTEGER_DIGITS`` digits anywhere in ``value``."""
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is int and not -_LIMIT < node < _LIMIT:
            digits = len(str(abs(node)))  # the reader stops at Python's 4,300 digits
            raise MalformedRecord(
                f"holds an integer of {digits} digits, which is out of range"
                f" (at most {MAX_INTEGER_DIGITS})"
            )
        if type(node) is dict:
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
