"""``kill -9`` in the middle of a large delivery loses nothing (DESIGN.md §1, API.md §6).

100,000 records are ingested first (500-record NDJSON requests, ``STREAMER_SYNC=full``), then a
stream reads them from the oldest record. The daemon is killed once the receiver has
acknowledged some but not all, and started again on the same data directory. Every record must
arrive at least once, and the only duplicates allowed are whole batches that the receiver
acknowledged before the kill but the daemon had not yet recorded as acknowledged.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from schemas import Kind, Version, dumps
from tests.e2e.harness import Exchange, NewReceiver, StartDaemon, eventually, fleet_records
from tests.log.backends import ON_BOTH_BACKENDS

pytestmark = ON_BOTH_BACKENDS

TOTAL = 100_000
PER_REQUEST = 500
SIZE = 500
KILL_AFTER = 10_000  # acknowledged records
MAX_DUPLICATE_BATCHES = 3
_ID_PREFIX = re.compile(rb'^\{"id":\d+')


def _bodies() -> tuple[list[tuple[Kind, bytes]], set[int]]:
    """NDJSON bodies of ``TOTAL`` records, half events and half usage, each id unique.

    Rendering 100,000 records one by one takes seconds, so a pool of real fleet records is
    rendered once and each copy gets its own id (the canonical JSON starts with ``{"id":``).
    """
    requests: list[tuple[Kind, bytes]] = []
    ids: set[int] = set()
    next_id = 7_000_000_000
    for seed, kind in ((70, Kind.EVENT), (71, Kind.USAGE)):
        pool = [dumps(r, kind, Version.NEW) for r in fleet_records(seed, PER_REQUEST, kind)]
        tails = [_ID_PREFIX.sub(b"", body, count=1) for body in pool]
        assert all(not tail.startswith(b'{"id"') for tail in tails)
        for _ in range(TOTAL // 2 // PER_REQUEST):
            lines = []
            for tail in tails:
                next_id += 1
                ids.add(next_id)
                lines.append(b'{"id":%d%s\n' % (next_id, tail))
            requests.append((kind, b"".join(lines)))
    assert len(ids) == TOTAL
    return requests, ids


async def test_kill_9_mid_delivery_loses_nothing_and_duplicates_only_unacknowledged_batches(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon(STREAMER_SYNC="full")
    receiver = await new_receiver(keep_bodies=False)
    requests, ingested = _bodies()

    parallel = asyncio.Semaphore(4)

    async def post(kind: Kind, body: bytes) -> None:
        async with parallel:
            await daemon.ingest_ok(kind, body, PER_REQUEST, ndjson=True)

    await asyncio.gather(*(post(kind, body) for kind, body in requests))

    stream_id = await daemon.create_stream(receiver.url, size=SIZE, stream_historic_data=True)
    await eventually(
        lambda: len(receiver.ids()) >= KILL_AFTER,
        60,
        what=f"{KILL_AFTER} records acknowledged before the kill",
        interval_secs=0.005,
    )
    await daemon.kill9()
    # Let the receiver finish every request the killed daemon had sent whole.
    await eventually(lambda: receiver.in_flight == 0, what="the receiver idle")
    killed_at = len(receiver.exchanges)
    before = [e for e in receiver.exchanges[:killed_at] if e.acknowledged]
    seen_before = {i for e in before for i in e.ids}
    assert len(seen_before) < TOTAL, "the kill came after the delivery had finished"

    await daemon.restart()
    await eventually(
        lambda: receiver.id_set() >= ingested, 60, what="every record after the restart"
    )
    after = [e for e in receiver.exchanges[killed_at:] if e.acknowledged]

    # Every record at least once, and nothing that was not ingested.
    assert receiver.id_set() == ingested
    # Every request was a well-formed batch.
    for exchange in receiver.exchanges:
        assert exchange.array_len is not None
        assert 1 <= exchange.array_len <= SIZE

    # Each daemon on its own sends each record once: duplicates are across the kill only.
    assert _duplicates(before) == set()
    assert _duplicates(after) == set()
    duplicated = seen_before & {i for e in after for i in e.ids}

    # ... and they are whole batches acknowledged before the kill, re-sent after it.
    resent = [e for e in before if set(e.ids) & duplicated]
    for batch in resent:
        assert set(batch.ids) <= duplicated, "part of an acknowledged batch was sent again"
    assert duplicated == {i for e in resent for i in e.ids}
    assert len(resent) <= MAX_DUPLICATE_BATCHES, f"{len(resent)} batches were sent twice"
    assert len(duplicated) <= MAX_DUPLICATE_BATCHES * SIZE

    # The stream counted each record once and is up to date.
    stream = await daemon.settled(stream_id, TOTAL)
    assert stream["status"]["id"] == 1
    assert stream["error"] is None


def _duplicates(exchanges: list[Exchange]) -> set[int]:
    counts = Counter(i for e in exchanges for i in e.ids)
    return {i for i, n in counts.items() if n > 1}
