"""``streamer replay`` and ``streamer simulate``: records into a running service's ingest API.

Replay reads historical files (NDJSON, JSON, CSV of the S3 layout; gzip too; any version) and
sends their records as canonical ``new`` NDJSON; simulate sends a fleet's realistic records at
a chosen rate. Both keep a few requests in flight and show progress on a terminal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence

from schemas import Kind, Version, canonical_kind, dumps
from streamer.client import IngestClient, Progress
from streamer.convert import read_inputs
from streamer.simulate import Fleet

__all__ = ["replay", "simulate"]

_ROUTE = {Kind.EVENT: "events", Kind.USAGE: "usage"}


async def replay(files: Sequence[str], url: str, token: str, batch: int = 500) -> int:
    """Send every record of ``files``; return how many the service stored."""
    records = ((canonical_kind(record), record[0]) for _, _, record in read_inputs(files))
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

    async def paced() -> AsyncIterator[tuple[Kind, bytes]]:
        started = time.monotonic()
        sent = 0
        while count is None or sent < count:
            kind = kinds[sent % len(kinds)]
            yield kind, dumps(make[kind](), kind, Version.NEW)
            sent += 1
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0.01:
                await asyncio.sleep(ahead)

    size = max(1, min(batch, int(rate / 10) or 1))  # about ten requests a second
    return await IngestClient(url, token).post_all(
        _batches(paced(), size), progress or Progress("sent", total=count)
    )


async def _batches(
    records: Iterable[tuple[Kind, bytes]] | AsyncIterator[tuple[Kind, bytes]], size: int
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Canonical records, as (kind, bytes), in requests of ``size`` records of one kind."""
    pending: dict[Kind, list[bytes]] = {Kind.EVENT: [], Kind.USAGE: []}
    async for kind, body in _aiter(records):
        lines = pending[kind]
        lines.append(body)
        if len(lines) >= size:
            yield _ROUTE[kind], lines
            pending[kind] = []
    for kind, lines in pending.items():
        if lines:
            yield _ROUTE[kind], lines


async def _aiter(
    records: Iterable[tuple[Kind, bytes]] | AsyncIterator[tuple[Kind, bytes]],
) -> AsyncIterator[tuple[Kind, bytes]]:
    if isinstance(records, AsyncIterator):
        async for record in records:
            yield record
    else:
        for index, record in enumerate(records):
            yield record
            if index % 1000 == 999:
                await asyncio.sleep(0)  # let the requests in flight progress
