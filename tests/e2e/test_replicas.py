"""Replicas on one NATS (real ``streamer run`` processes and a real ``nats-server``): each stream
is delivered by exactly one replica at a time, whichever replica took the records in, and when
the replica delivering a stream is killed (``kill -9``) another takes it over once its lease
runs out, losing nothing; the only duplicates are the batches in flight at the kill."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas import Kind, Version
from streamer.log.leases import LEASE_SECS
from tests.e2e.harness import (
    Daemon,
    NewReceiver,
    Reply,
    StartDaemon,
    eventually,
    fleet_records,
    ndjson,
)

pytestmark = pytest.mark.parametrize(
    "log_backend", [pytest.param("nats", marks=pytest.mark.nats)], indirect=True
)

REPLICAS = 3
PER_REQUEST = 250
SIZE = 100
MAX_DUPLICATE_BATCHES = 2


async def _delivered(daemon: Daemon, stream: int) -> float:
    return await daemon.metric("streamer_records_delivered_total", stream=str(stream)) or 0.0


async def test_one_replica_delivers_a_stream_and_another_takes_it_over_after_a_kill_9(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    replicas = [await start_daemon() for _ in range(REPLICAS)]
    receiver = await new_receiver()
    receiver.default = Reply(delay_secs=0.02)  # slow enough to kill the holder mid-way
    stream = await replicas[0].create_stream(receiver.url, size=SIZE)

    ingested: set[int] = set()
    for seed, kind in ((80, Kind.EVENT), (81, Kind.USAGE)):
        records = fleet_records(seed, 5000, kind)
        ingested |= {r["id"] for r in records}
        for n, start in enumerate(range(0, len(records), PER_REQUEST)):
            chunk = records[start : start + PER_REQUEST]
            replica = replicas[n % REPLICAS]  # every replica takes records in
            await replica.ingest_ok(kind, ndjson(chunk, kind, Version.NEW), len(chunk), ndjson=True)
    await eventually(lambda: len(receiver.id_set()) >= 1000, what="a first part delivered")

    delivering = [r for r in replicas if await _delivered(r, stream) > 0]
    assert len(delivering) == 1, "exactly one replica delivers the stream"
    (holder,) = delivering
    assert len(receiver.id_set()) < len(ingested), "killed mid-delivery"
    await holder.kill9()

    others = [r for r in replicas if r is not holder]
    await eventually(
        lambda: ingested <= receiver.id_set(),
        LEASE_SECS + 30,
        what="every record delivered after the takeover",
    )
    taken_over = [r for r in others if await _delivered(r, stream) > 0]
    assert len(taken_over) == 1, "exactly one other replica took the stream over"
    duplicates = sum(n - 1 for n in Counter(receiver.ids()).values())
    assert duplicates <= MAX_DUPLICATE_BATCHES * SIZE, duplicates
    state = await taken_over[0].settled(stream, len(ingested))
    assert state["status"]["id"] == 1


async def test_changes_made_through_one_replica_are_seen_by_the_others(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    first, second = await start_daemon(), await start_daemon()
    receiver = await new_receiver()
    stream = await first.create_stream(receiver.url, size=10)

    await eventually(lambda: _known(second, stream), 5, what="the stream known to the other")
    await second.patch_status(stream, 2)  # pause through the other replica
    await eventually(lambda: _status_is(first, stream, 2), 5, what="paused for the first")
    records = fleet_records(82, 30, Kind.USAGE)
    await first.ingest_ok(Kind.USAGE, ndjson(records, Kind.USAGE, Version.NEW), 30, ndjson=True)
    await second.patch_status(stream, 1)  # resume
    await eventually(
        lambda: {r["id"] for r in records} <= receiver.id_set(), what="delivered once resumed"
    )

    response = await second.request("DELETE", f"/api/v2/data_stream/{stream}")
    assert response.status == 202
    await eventually(lambda: _gone(first, stream), 5, what="deleted for the first")

    added = await first.request(
        "POST",
        "/api/v1/api_callback",
        json={"url": "https://callback.example/hook", "organisation": {"id": 1}},
    )
    assert added.status == 201, (added.status, added.text)

    async def shared() -> bool:
        response = await second.request("GET", added.headers["Location"])
        return response.status == 200 and response.json()["url"] == added.json()["url"]

    await eventually(shared, 5, what="the API callback known to the other replica")


async def _known(daemon: Daemon, stream: int) -> bool:
    response = await daemon.request("GET", f"/api/v2/data_stream/{stream}")
    return response.status == 200


async def _status_is(daemon: Daemon, stream: int, status: int) -> bool:
    return await daemon.status(stream) == status


async def _gone(daemon: Daemon, stream: int) -> bool:
    response = await daemon.request("GET", f"/api/v2/data_stream/{stream}")
    return response.status == 404
