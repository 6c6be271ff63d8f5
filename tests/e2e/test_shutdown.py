"""Graceful shutdown (app.py, DESIGN.md §6): SIGTERM while streams deliver → exit code 0 within
the shutdown timeout; in-flight sends finish within it or are cancelled, unacknowledged records
stay in the log, and after a restart on the same data directory every record arrives.

The timeout is the budget of the whole shutdown (``streamer.shutdown``), measured from the
signal: the exit may come at most ``EXIT_MARGIN_SECS`` after it, whatever hangs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from schemas import Kind, Version
from tests.e2e.harness import (
    Daemon,
    NewReceiver,
    Receiver,
    Reply,
    StartDaemon,
    eventually,
    fleet_records,
    ids_of,
    ndjson,
)

SHUTDOWN_TIMEOUT_SECS = 4.0
EXIT_MARGIN_SECS = 3.0  # interpreter teardown on a slow, busy machine, on top of the budget
RECORDS = 1000
SIZE = 20


async def _daemon(start_daemon: StartDaemon, **env: str) -> Daemon:
    return await start_daemon(STREAMER_SHUTDOWN_TIMEOUT_SECS=str(SHUTDOWN_TIMEOUT_SECS), **env)


async def _ingest(daemon: Daemon, seed: int) -> set[int]:
    records = fleet_records(seed, RECORDS, Kind.EVENT)
    await daemon.ingest_ok(
        Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), RECORDS, ndjson=True
    )
    return set(ids_of(records))


async def _stop_within_timeout(daemon: Daemon) -> None:
    code, elapsed = await daemon.stop()
    assert code == 0, "\n".join(daemon.output[-20:])
    assert elapsed <= SHUTDOWN_TIMEOUT_SECS + EXIT_MARGIN_SECS, f"exit took {elapsed:.1f} s"


def _no_duplicates(receiver: Receiver) -> None:
    counts = Counter(receiver.ids())
    assert [i for i, n in counts.items() if n > 1] == []


async def test_sigterm_while_delivering_exits_0_and_the_rest_arrives_after_restart(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await _daemon(start_daemon)
    receiver = await new_receiver(keep_bodies=False)
    receiver.default = Reply(delay_secs=0.2)  # 50 batches: ~10 s of delivery
    stream_id = await daemon.create_stream(receiver.url, size=SIZE)
    ingested = await _ingest(daemon, 60)
    await eventually(lambda: len(receiver.ids()) >= 5 * SIZE, what="a few batches delivered")

    await _stop_within_timeout(daemon)
    assert len(receiver.id_set()) < RECORDS, "the delivery finished before SIGTERM"

    receiver.default = Reply()
    await daemon.restart()
    await eventually(lambda: receiver.id_set() == ingested, what="every record after the restart")
    # In-flight sends finished before the exit and were recorded: nothing is sent twice.
    _no_duplicates(receiver)
    stream = await daemon.settled(stream_id, RECORDS)
    assert stream["status"]["id"] == 1


async def test_sigterm_while_a_send_hangs_exits_0_within_the_timeout(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await _daemon(start_daemon, STREAMER_REQUEST_TIMEOUT_SECS="600")
    receiver = await new_receiver(keep_bodies=False)
    stream_id = await daemon.create_stream(receiver.url, size=SIZE)
    first = await _ingest(daemon, 61)
    await eventually(lambda: receiver.id_set() == first, what="the first records")
    await daemon.settled(stream_id, RECORDS)

    receiver.default = Reply(hang=True)
    rest = await _ingest(daemon, 62)
    hung = await eventually(
        lambda: [e for e in receiver.exchanges if e.status is None], what="a hung request"
    )
    await _stop_within_timeout(daemon)

    receiver.default = Reply()  # the hung request itself is never answered
    await daemon.restart()
    await eventually(
        lambda: receiver.id_set() == first | rest, what="every record after the restart"
    )
    assert set(hung[0].ids) <= receiver.id_set()  # the cancelled batch was sent again
    _no_duplicates(receiver)  # ... and it had not been acknowledged
    stream = await daemon.settled(stream_id, 2 * RECORDS)
    assert stream["status"]["id"] == 1


async def test_sigterm_while_retrying_is_not_a_failure_of_the_stream(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    # A long window: on its own, the stream would retry for a minute before giving up.
    daemon = await _daemon(
        start_daemon, STREAMER_RETRY_MAX_SECS="60", STREAMER_RETRY_CAP_SECS="0.2"
    )
    receiver = await new_receiver(keep_bodies=False)
    stream_id = await daemon.create_stream(receiver.url, size=SIZE)
    first = await _ingest(daemon, 63)
    await eventually(lambda: receiver.id_set() == first, what="the first records")
    await daemon.settled(stream_id, RECORDS)

    receiver.default = Reply(503)
    rest = await _ingest(daemon, 64)
    await eventually(
        lambda: sum(e.status == 503 for e in receiver.exchanges) >= 3, what="retries under way"
    )
    await _stop_within_timeout(daemon)

    receiver.default = Reply()
    await daemon.restart()
    # The destination never failed for longer than the window: the stream is not in Error,
    # and the records that waited arrive.
    stream = await daemon.stream(stream_id)
    assert stream["status"]["id"] == 1, stream["error"]
    await eventually(
        lambda: receiver.id_set() == first | rest, what="every record after the restart"
    )


@asynccontextmanager
async def _upload_that_never_ends(daemon: Daemon) -> AsyncIterator[None]:
    """An ingest request whose body stops arriving halfway, held open while inside."""
    url = urlsplit(daemon.base_url)
    assert url.hostname is not None
    assert url.port is not None
    _, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(
        b"POST /api/v1/ingest/events HTTP/1.1\r\nHost: streamer\r\n"
        b"Authorization: Bearer " + daemon.token.encode() + b"\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n\r\n" + b"{" * 1000
    )
    await writer.drain()
    # The service reads connections in the order their bytes came: once a later request is
    # answered, the upload's handler is waiting for the rest of its body.
    assert (await daemon.request("GET", "/health/live", token=None)).status == 200
    try:
        yield
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def test_sigterm_while_a_request_and_a_send_hang_exits_within_the_budget(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    # Each of the two drains, given the whole budget, took all of it: twice the budget.
    daemon = await _daemon(start_daemon, STREAMER_REQUEST_TIMEOUT_SECS="600")
    receiver = await new_receiver(keep_bodies=False)
    receiver.default = Reply(hang=True)
    await daemon.create_stream(receiver.url, size=SIZE)
    await _ingest(daemon, 65)
    await eventually(
        lambda: [e for e in receiver.exchanges if e.status is None], what="a hung request"
    )
    async with _upload_that_never_ends(daemon):
        await _stop_within_timeout(daemon)
