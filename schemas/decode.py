"""JSON input: one object, an array of objects, or NDJSON, read exactly and within bounds.

Integers beyond 64 bits (a 20-digit ICCID written as a number) stay exact: orjson would turn
them into floats, so a document that holds such a literal is read again by the standard
library's parser, which is slower but keeps every digit.

Bounds (README, "Input limits"): a record nests at most ``MAX_DEPTH`` levels of objects and
arrays, an integer literal has at most ``MAX_INTEGER_DIGITS`` digits, a number is finite, and
strings are valid UTF-8 without lone surrogates. A record beyond them is refused like any
unreadable record (``MalformedRecord``), so every record this module returns can be written
back by every renderer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from schemas.errors import MalformedRecord, RecordError
from schemas.kinds import Kind, Record, Version
from schemas.parse import parse_record

__all__ = ["MAX_DEPTH", "MAX_INTEGER_DIGITS", "iter_json", "loads", "parse_json"]

MAX_DEPTH = 64
"""The deepest nesting of objects and arrays in a record (the record itself is level 1)."""
MAX_INTEGER_DIGITS = 100
"""The most digits an integer literal may have (a 20-digit ICCID has 20)."""

_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else 0x7B if b in b"{[" else 0x20 for b in range(256))
"""Digits → ``0``, ``{`` and ``[`` → ``{``, anything else → a space: one pass over the input
tells both the nesting bound and where long integer literals may be."""
_RUN = b"0" * 19
_BEFORE_NUMBER = frozenset(b":[,- \t\r\n")
_CONTAINERS = (dict, list)


class _TooDeep(MalformedRecord):
    """Valid JSON, nested deeper than ``MAX_DEPTH``."""

    def __init__(self, index: int | None = None) -> None:
        super().__init__(f"nests objects and arrays deeper than {MAX_DEPTH} levels", index)


def loads(data: bytes) -> Any:
    """Parse one JSON document within the bounds, keeping every integer exact; raise
    ``MalformedRecord``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _refused(exc) from None
    mask = data.translate(_MASK)
    if mask.count(b"{") > MAX_DEPTH and _depth_over(value, MAX_DEPTH):  # the count bounds it
        raise _TooDeep
    return _exact(data) if _may_hold_long_integer(data, mask) else value


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
    except _TooDeep as exc:
        value = exc.at(0)
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
    """The elements of an array. An element nested too deep ends the array with its error:
    the elements before it are not returned either, since the exact parser cannot read it."""
    try:
        try:
            values = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _refused(exc) from None
        mask = data.translate(_MASK)
        if mask.count(b"{") > MAX_DEPTH + 1:
            for index, value in enumerate(values):
                if _depth_over(value, MAX_DEPTH):
                    yield _TooDeep(index)
                    return
        if _may_hold_long_integer(data, mask):
            values = _exact(data)
    except MalformedRecord as exc:
        yield exc.at(0)
        return
    yield from values


def _refused(exc: orjson.JSONDecodeError) -> MalformedRecord:
    """What orjson's refusal means: invalid JSON or UTF-8, a lone surrogate, NaN or infinity,
    a number beyond a double, or nesting beyond 1,024 levels."""
    text = str(exc)
    if text.startswith("depth limit exceeded"):
        return _TooDeep()
    if text.startswith("number is infinity"):
        return MalformedRecord(
            f"holds a number that is out of range (integers have at most"
            f" {MAX_INTEGER_DIGITS} digits, numbers are finite): {exc}"
        )
    return MalformedRecord(f"is not valid JSON: {exc}")


def _exact(data: bytes) -> Any:
    """The standard library's reading, integers exact; only for data orjson has read within
    ``MAX_DEPTH`` (the standard parser recurses)."""
    try:
        return json.loads(data, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise MalformedRecord(f"is not valid JSON: {exc}") from None


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


def _may_hold_long_integer(data: bytes, mask: bytes) -> bool:
    """Whether ``data`` (``mask`` is its ``_MASK`` translation) may hold an integer literal
    orjson cannot keep exact (19+ digits).

    Runs of 19+ digits inside strings (ICCIDs written as strings) are told apart by the byte
    before the run; a run that may be either counts as a literal, which only costs speed.
    """
    start = mask.find(_RUN)
    while start != -1:
        while start and mask[start - 1] == 0x30:
            start -= 1
        if start == 0 or data[start - 1] in _BEFORE_NUMBER:
            return True
        # the next space ends this run; a bracket before it is inside the same string (a run of
        # digits cannot be followed by one outside a string), so nothing skipped is a literal
        end = mask.find(b" ", start)
        if end == -1:
            return False
        start = mask.find(_RUN, end)
    return False


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise MalformedRecord(
            f"holds an integer of {len(text.lstrip('-'))} digits; at most {MAX_INTEGER_DIGITS}"
        )
    return int(text)
