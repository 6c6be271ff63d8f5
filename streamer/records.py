"""An ingest body in, log entries out: the CPU-heavy part of ingest, as one pure function.

``read_body`` runs in the service process or in a worker process of ``BodyReaders`` (so ingest
parsing uses another core while the event loop keeps delivering). It is all-or-nothing by
design: the caller stores the entries only when there are no errors and no foreign records.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from schemas import Kind, RecordError, Version, dumps, parse_json
from streamer.log.base import Entry

__all__ = ["BodyReaders", "ReadBody", "read_body"]

MAX_LISTED_ERRORS = 1000


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
    """``read_body`` on ``workers`` processes (started on first use), or in this process when
    ``workers`` is 0. Worker processes are spawned, not forked: the service has threads."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def read(
        self, body: bytes, kind: Kind, version: Version | None, organisation: int | None
    ) -> ReadBody:
        if self._workers == 0:
            return read_body(body, kind, version, organisation)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, read_body, body, kind, version, organisation
            )
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return read_body(body, kind, version, organisation)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _worker_start(parent: int) -> None:
    """In a worker: leave Ctrl-C to the service (which stops its workers itself), and end this
    process when the service is gone, even killed with SIGKILL (which gives the pool no chance
    to stop its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def default_workers() -> int:
    """One worker per core beyond the first, at most four; none on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
