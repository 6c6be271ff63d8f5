"""A destination that never answers holds back only its own stream (DESIGN.md §1)."""

from __future__ import annotations

from schemas import Kind, Version
from tests.e2e.harness import NewReceiver, Reply, StartDaemon, eventually, fleet_records, ndjson
from tests.log.backends import ON_BOTH_BACKENDS

pytestmark = ON_BOTH_BACKENDS

RECORDS_PER_KIND = 1000
SIZE = 50


async def test_a_hung_destination_does_not_hold_back_another_stream(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    # The hung request must stay hung for the whole test: no client timeout cuts it short.
    daemon = await start_daemon(STREAMER_REQUEST_TIMEOUT_SECS="600")
    hung = await new_receiver()
    hung.default = Reply(hang=True)
    good = await new_receiver(keep_bodies=False)
    hung_stream = await daemon.create_stream(hung.url, size=SIZE)
    good_stream = await daemon.create_stream(good.url, size=SIZE)

    ingested: set[int] = set()
    for seed, kind in ((40, Kind.EVENT), (41, Kind.USAGE)):
        records = fleet_records(seed, RECORDS_PER_KIND, kind)
        ingested |= {r["id"] for r in records}
        for start in range(0, RECORDS_PER_KIND, 250):  # several appends, not one
            chunk = records[start : start + 250]
            await daemon.ingest_ok(kind, ndjson(chunk, kind, Version.NEW), len(chunk), ndjson=True)

    await eventually(
        lambda: good.id_set() == ingested, 20, what="every record at the healthy stream"
    )
    assert len(good.acknowledged()) >= 2 * RECORDS_PER_KIND // SIZE  # many rounds, not one
    good_state = await daemon.settled(good_stream, 2 * RECORDS_PER_KIND)
    assert good_state["status"]["id"] == 1

    # Meanwhile the other stream is stuck on its first request and has delivered nothing.
    assert len(hung.exchanges) == 1
    assert hung.exchanges[0].status is None  # still unanswered
    assert hung.acknowledged() == []
    stuck = await daemon.stream(hung_stream)
    assert stuck["stats"]["delivered_records"] == 0
    assert stuck["stats"]["pending_records"] == 2 * RECORDS_PER_KIND
