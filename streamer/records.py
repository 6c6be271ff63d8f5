"""An ingest body in, log entries out: the CPU-heavy part of ingest, as one pure function.

``read_body`` runs in the service process or in a worker process of ``BodyReaders`` (so ingest
parsing uses another core while the event loop keeps delivering; ``streamer.workers`` says
what happens when a worker dies or hangs). It is all-or-nothing by
design: the caller stores the entries only when there are no errors and no foreign records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import Kind, RecordError, Version, dumps, parse_json
from streamer.log.base import Entry
from streamer.workers import Workers, WorkersUnavailable

__all__ = ["BodyReaders", "ReadBody", "read_body"]

MAX_LISTED_ERRORS = 1000
_PROBE_SECS = 5.0


@dataclass(slots=True)
class ReadBody:
    """The entries of a body, or why it cannot be stored: every unreadable record (up to
    ``MAX_LISTED_ERRORS``) and the positions of records of another organisation."""

    entries: list[Entry] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    foreign: list[int] = field(default_factory=list)


def read_body(
    body: bytes, kind: Kind, version: Version | None, organisation: int | None
) -> ReadBody:
    """Parse every record of ``body`` (JSON, array or NDJSON) as ``kind``; ``organisation``,
    when given, is the only organisation whose records may be in it."""
    read = ReadBody()
    for index, item in enumerate(parse_json(body.splitlines(), kind, version)):
        if isinstance(item, RecordError):
            read.error_count += 1
            if len(read.errors) < MAX_LISTED_ERRORS:
                read.errors.append(
                    {"index": item.index, "field": item.field, "message": item.message}
                )
            continue
        owner = item["organisation"]["id"]
        if organisation is not None and owner != organisation:
            read.foreign.append(index)
        if kind is Kind.EVENT:
            alert = item.get("alert")
            event_type = item["event_type"]["id"]
            flag = None if alert is None else int(alert)
            read.entries.append(
                Entry(kind, owner, event_type, flag, dumps(item, kind, Version.NEW))
            )
        else:
            read.entries.append(Entry(kind, owner, None, None, dumps(item, kind, Version.NEW)))
    return read


class BodyReaders:
    """``read_body`` on ``workers`` processes (started when first needed), or in this process
    when ``workers`` is 0. ``read`` raises ``WorkersUnavailable`` when no worker could read the
    body within ``timeout_secs`` (nothing was stored: the caller answers 503)."""

    def __init__(
        self, workers: int, timeout_secs: float, *, on_lost: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = Workers(read_body, workers, timeout_secs, on_lost=on_lost) if workers else None

    async def read(
        self, body: bytes, kind: Kind, version: Version | None, organisation: int | None
    ) -> ReadBody:
        if self._pool is None:
            return read_body(body, kind, version, organisation)
        return await self._pool.run(body, kind, version, organisation)

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
