"""``streamer replay`` and ``streamer simulate``: records into a running service's ingest API.

Replay reads historical files (NDJSON, JSON, CSV of the S3 layout; gzip too; any version) and
sends their records as canonical ``new`` NDJSON; simulate sends a fleet's realistic records at
a chosen rate. Both keep a few requests in flight and show progress on a terminal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence

from schemas import Kind, Record, Version, detect_kind, dumps
from streamer.client import IngestClient, Progress
from streamer.convert import read_inputs
from streamer.simulate import Fleet

__all__ = ["replay", "simulate"]

_ROUTE = {Kind.EVENT: "events", Kind.USAGE: "usage"}


async def replay(files: Sequence[str], url: str, token: str, batch: int = 500) -> int:
    """Send every record of ``files``; return how many the service stored."""
    records = (record for _, _, record in read_inputs(files))
    return await IngestClient(url, token).post_all(_batches(records, batch), Progress("replayed"))


async def simulate(
    url: str,
    token: str,
    *,
    rate: float,
    count: int | None,
    kinds: Sequence[Kind] = (Kind.EVENT, Kind.USAGE),
    organisations: int = 1,
    seed: int = 0,
    batch: int = 500,
    progress: Progress | None = None,
) -> int:
    """Send ``count`` records (or until interrupted) at about ``rate`` records per second."""
    fleet = Fleet(seed=seed, organisations=organisations)
    make = {Kind.EVENT: fleet.event, Kind.USAGE: fleet.usage}

    async def paced() -> AsyncIterator[Record]:
        started = time.monotonic()
        sent = 0
        while count is None or sent < count:
            yield make[kinds[sent % len(kinds)]]()
            sent += 1
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0.01:
                await asyncio.sleep(ahead)

    size = max(1, min(batch, int(rate / 10) or 1))  # about ten requests a second
    return await IngestClient(url, token).post_all(
        _batches(paced(), size), progress or Progress("sent", total=count)
    )


async def _batches(
    records: Iterable[Record] | AsyncIterator[Record], size: int
) -> AsyncIterator[tuple[str, list[bytes]]]:
    pending: dict[Kind, list[bytes]] = {Kind.EVENT: [], Kind.USAGE: []}
    async for record in _aiter(records):
        kind = detect_kind(record)
        lines = pending[kind]
        lines.append(dumps(record, kind, Version.NEW))
        if len(lines) >= size:
            yield _ROUTE[kind], lines
            pending[kind] = []
    for kind, lines in pending.items():
        if lines:
            yield _ROUTE[kind], lines


async def _aiter(records: Iterable[Record] | AsyncIterator[Record]) -> AsyncIterator[Record]:
    if isinstance(records, AsyncIterator):
        async for record in records:
            yield record
    else:
        for index, record in enumerate(records):
            yield record
            if index % 1000 == 999:
                await asyncio.sleep(0)  # let the requests in flight progress
