"""Hostile records: each class of input that once raised past the reader, as bytes.

Every one must be refused as that record's error (field and reason), at ingest (400
``invalid_records``) and in ``streamer convert`` (exit 1), never as a 500 or a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from schemas import Record
from schemas.decode import MAX_DEPTH
from tests.schemas.samples import EVENT

__all__ = ["HOSTILE", "Hostile"]

LONG = b"1" * 20
"""An integer literal beyond 64 bits: it sends a document to the exact (standard) parser."""


@dataclass(frozen=True)
class Hostile:
    body: bytes
    field: str
    message_has: str


def _with(record: Record, **fields: object) -> bytes:
    return orjson.dumps({**record, **fields})


def _extra(raw: bytes) -> bytes:
    """The sample event with an unknown field ``x`` holding ``raw`` (JSON text)."""
    return orjson.dumps(EVENT)[:-1] + b',"x":' + raw + b"}"


def _nested(levels: int, leaf: bytes) -> bytes:
    """``leaf`` inside ``levels`` objects; under ``x`` of a record, it is at ``levels + 1``."""
    return b'{"a":' * levels + leaf + b"}" * levels


HOSTILE = {
    "severity description as object": Hostile(
        _with(EVENT, event_severity={"id": 1, "description": {"a": 1}}),
        "event_severity.description",
        "must be a string, not an object",
    ),
    "severity description as array": Hostile(
        _with(EVENT, event_severity={"id": 1, "description": ["WARN"]}),
        "event_severity.description",
        "must be a string, not an array",
    ),
    "integer of 4,300 digits": Hostile(_extra(b"7" * 4300), "$", "out of range"),
    "integer of 101 digits": Hostile(_extra(b"7" * 101), "$", "integer of 101 digits"),
    "deep nesting with a long integer": Hostile(
        _extra(_nested(1200, LONG)), "$", f"deeper than {MAX_DEPTH} levels"
    ),
    "deep arrays with a long integer": Hostile(
        _extra(b"[" * 1200 + LONG + b"]" * 1200), "$", f"deeper than {MAX_DEPTH} levels"
    ),
    "lone surrogate with a long integer": Hostile(
        orjson.dumps(EVENT)[:-1] + b',"x":"\\ud800","y":' + LONG + b"}",
        "$",
        "surrogate",
    ),
    "field nested 990 levels": Hostile(
        _extra(_nested(990, b"1")), "$", f"deeper than {MAX_DEPTH} levels"
    ),
    "field nested one level too deep": Hostile(
        _extra(_nested(MAX_DEPTH, b"1")), "$", f"deeper than {MAX_DEPTH} levels"
    ),
}
