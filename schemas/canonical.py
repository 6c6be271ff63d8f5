"""Records in, canonical bytes and routing facts out: what ingest stores.

The records producers send every day are read in one pass of C (``schemas/_canonical.c``):
bounds, JSON, the type of every known field, the version's normalisation and the canonical
bytes, with no Python object per value. A record it does not take (an error of any kind, a
timestamp with an offset or a long fraction, a duplicate key, ...) is read by the reference
(``loads`` and ``parse_record``), which gives the same bytes or names the error;
``tests/schemas/test_canonical.py`` holds the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain

from schemas._canonical import canonical as _canonical
from schemas._canonical import canonical_lines as _canonical_lines
from schemas.decode import loads, parse_json
from schemas.errors import RecordError
from schemas.kinds import Kind, Record, Version, detect_kind
from schemas.parse import parse_record
from schemas.render import to_json

__all__ = [
    "Canonical",
    "Lines",
    "canonical",
    "canonical_json",
    "canonical_kind",
    "canonical_lines",
    "canonical_record",
]

Canonical = tuple[bytes, bool, int, int, int]
"""A record's canonical bytes, whether it is usage (else an event), its organisation, its event
type (0 for usage) and its alert (0 or 1, or -1 for none)."""

Lines = tuple[list[bytes], bytes, bytes, bytes]
"""The records of an NDJSON body: their canonical bytes, and their organisations, event types
and alerts as columns of native 8-, 8- and 1-byte integers (the last two empty for usage)."""

_WANT = {None: 0, Version.NEW: 1, Version.MIGRATED: 2, Version.OLD: 2}
"""The version a caller expects, as the C pass takes it: any, ``new``, or a legacy one."""


def canonical(raw: bytes, kind: Kind, version: Version | None = None) -> Canonical:
    """The canonical form of one record's JSON bytes; raise ``RecordError``."""
    fast = _canonical(raw, kind is Kind.USAGE, _WANT[version])
    if fast is not None:
        return fast
    return canonical_record(parse_record(loads(raw), kind, version))


def canonical_json(
    lines: Iterable[bytes], kind: Kind | None = None, version: Version | None = None
) -> Iterator[Canonical | RecordError]:
    """Each record of a body given as lines (an object, an array or NDJSON, as ``parse_json``
    tells them), canonical, or the error of each bad one. Without ``kind``, records of both
    kinds are read."""
    rest = iter(lines)
    first = next((line for line in rest if line and not line.isspace()), None)
    if first is None:
        return
    want = _WANT[version]
    array = first.lstrip().startswith(b"[")
    fast = None if array else _canonical(first, _usage(first, kind), want)
    if fast is not None:
        yield fast
    else:  # the framing as parse_json tells it: an array, one document, or NDJSON's first line
        framed = parse_json(chain([first], rest), kind, version)
        for item in framed if array else [next(framed)]:
            yield item if isinstance(item, RecordError) else canonical_record(item)
    index = 1
    for line in rest:  # NDJSON, one record per line: the common case
        if not line or line.isspace():  # not ``strip()``: that copies every line
            continue
        fast = _canonical(line, _usage(line, kind), want)
        if fast is not None:
            yield fast
        else:
            try:
                yield canonical_record(parse_record(loads(line), kind, version))
            except RecordError as exc:
                yield exc.at(index)
        index += 1


def canonical_lines(body: bytes, kind: Kind, version: Version | None = None) -> Lines | None:
    """Every record of an NDJSON body of ``kind`` read in one call of the C pass, or ``None``
    when one of them is the reference's to read (an error of any kind, an array, a document
    over many lines, ...): ``canonical_json`` then reads the body."""
    return _canonical_lines(body, kind is Kind.USAGE, _WANT[version])


def canonical_kind(record: Canonical) -> Kind:
    """The kind of a canonical record."""
    return Kind.USAGE if record[1] else Kind.EVENT


def _usage(line: bytes, kind: Kind | None) -> bool:
    """Whether to read ``line`` as usage: as ``kind`` says, or a guess (the C pass leaves a
    record of the other kind to the reference, which tells the kind)."""
    return kind is Kind.USAGE if kind is not None else b'"event_type"' not in line


def canonical_record(record: Record) -> Canonical:
    """The canonical form of a record already read into the canonical shape (a CSV row's)."""
    organisation: int = record["organisation"]["id"]
    if detect_kind(record) is Kind.USAGE:
        return to_json(record), True, organisation, 0, -1
    alert = record.get("alert")
    event_type: int = record["event_type"]["id"]
    return to_json(record), False, organisation, event_type, -1 if alert is None else int(alert)
