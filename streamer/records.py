"""An ingest body in, log entries out: the CPU-heavy part of ingest, as pure functions.

The bodies producers send every day (NDJSON of good records) are read in one call of the C pass
(``read_fast``, about a microsecond a record) in the service process. A body it leaves to the
reference reader (a bad record, an array, a document over many lines, ...) is read by
``read_reference`` in a worker process of ``BodyReaders`` (so that reader's tens of microseconds
a record use another core while the event loop keeps delivering; ``streamer.workers`` says
what happens when a worker dies or hangs). Reading is all-or-nothing by design: the caller
stores the entries only when there are no errors and no foreign records.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Any

from schemas import Kind, RecordError, Version, canonical_json, canonical_lines
from streamer.log.base import Entry
from streamer.workers import Workers, WorkersUnavailable

__all__ = ["BodyReaders", "ReadBody", "read_body", "read_fast", "read_reference"]

MAX_LISTED_ERRORS = 1000
_PROBE_SECS = 5.0


@dataclass(slots=True)
class ReadBody:
    """The records of a body, or why it cannot be stored: every unreadable record (up to
    ``MAX_LISTED_ERRORS``) and the positions of records of another organisation.

    The records travel from a worker process in few objects (pickle writes a list of bytes and
    an array in C, an object per record in Python): their canonical bytes and their routing
    facts in arrays; ``entries`` makes the log's entries of them."""

    kind: Kind
    bodies: list[bytes] = field(default_factory=list)
    organisations: array[int] = field(default_factory=lambda: array("q"))
    event_types: array[int] = field(default_factory=lambda: array("q"))
    alerts: array[int] = field(default_factory=lambda: array("b"))
    """0/1, or -1 for none (events only)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    foreign: list[int] = field(default_factory=list)

    def entries(self) -> list[Entry]:
        kind = self.kind
        if kind is Kind.EVENT:
            types: Iterable[int | None] = self.event_types
            alerts: Iterable[int | None] = [None if a < 0 else a for a in self.alerts]
        else:
            types, alerts = repeat(None), repeat(None)
        rows = zip(repeat(kind), self.organisations, types, alerts, self.bodies, strict=False)
        return list(map(_entry, rows))


_entry: Callable[[tuple[Kind, int, int | None, int | None, bytes]], Entry] = partial(
    tuple.__new__, Entry
)
"""An ``Entry`` of its fields, made in C (``Entry(*fields)`` runs Python code)."""


def read_body(
    body: bytes, kind: Kind, version: Version | None, organisation: int | None
) -> ReadBody:
    """Parse every record of ``body`` (JSON, array or NDJSON) as ``kind``; ``organisation``,
    when given, is the only organisation whose records may be in it."""
    read = read_fast(body, kind, version, organisation)
    return read_reference(body, kind, version, organisation) if read is None else read


def read_fast(
    body: bytes, kind: Kind, version: Version | None, organisation: int | None
) -> ReadBody | None:
    """``read_body`` for a body the C pass reads whole, or ``None`` for the others."""
    lines = canonical_lines(body, kind, version)
    if lines is None:
        return None
    bodies, organisations, event_types, alerts = lines
    read = ReadBody(
        kind, bodies, array("q", organisations), array("q", event_types), array("b", alerts)
    )
    if organisation is not None and read.organisations.count(organisation) != len(bodies):
        read.foreign = [i for i, owner in enumerate(read.organisations) if owner != organisation]
    return read


def read_reference(
    body: bytes, kind: Kind, version: Version | None, organisation: int | None
) -> ReadBody:
    """``read_body`` record by record, each by the C pass or the reference reader."""
    read = ReadBody(kind)
    bodies = read.bodies
    organisations = read.organisations
    event_types, alerts = read.event_types, read.alerts
    for index, item in enumerate(canonical_json(body.splitlines(), kind, version)):
        if isinstance(item, RecordError):
            read.error_count += 1
            if len(read.errors) < MAX_LISTED_ERRORS:
                read.errors.append(
                    {"index": item.index, "field": item.field, "message": item.message}
                )
            continue
        canonical, _, owner, event_type, alert = item
        if organisation is not None and owner != organisation:
            read.foreign.append(index)
        bodies.append(canonical)
        organisations.append(owner)
        if kind is Kind.EVENT:
            event_types.append(event_type)
            alerts.append(alert)
    return read


class BodyReaders:
    """``read_body`` with the C pass in this process and the reference reader on ``workers``
    processes (started when first needed), or in this process when ``workers`` is 0. ``read``
    raises ``WorkersUnavailable`` when no worker could read the body within ``timeout_secs``
    (nothing was stored: the caller answers 503)."""

    def __init__(
        self, workers: int, timeout_secs: float, *, on_lost: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = (
            Workers(read_reference, workers, timeout_secs, on_lost=on_lost) if workers else None
        )

    async def read(
        self, body: bytes, kind: Kind, version: Version | None, organisation: int | None
    ) -> ReadBody:
        if self._pool is None:
            return read_body(body, kind, version, organisation)
        read = read_fast(body, kind, version, organisation)
        if read is None:
            return await self._pool.run(body, kind, version, organisation)
        return read

    async def unready(self) -> str | None:
        """Why ingest cannot read bodies now, or ``None`` when it can. After a failure, an
        empty body is read to find out (so readiness comes back without ingest traffic)."""
        if self._pool is None or self._pool.failure is None:
            return None
        with contextlib.suppress(WorkersUnavailable):
            await self._pool.run(b"", Kind.EVENT, None, None, timeout_secs=_PROBE_SECS)
        return self._pool.failure

    async def close(self, timeout_secs: float) -> None:
        if self._pool is not None:
            await self._pool.close(timeout_secs)


def default_workers() -> int:
    """One worker per core beyond the first, at most four; none on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
