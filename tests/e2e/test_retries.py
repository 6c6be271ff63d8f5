"""Retry policy and the stream state machine against a misbehaving receiver (API.md §6).

Retryable answers (5xx, ``Retry-After``) are retried within the window without losing a record;
a refused first request fails fast; an outage longer than the window puts the stream in Error,
and a restart after the fix delivers the rest from the stream's cursor.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from schemas import Kind, Version
from tests.e2e.harness import (
    API_POLL_SECS,
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
from tests.log.backends import ON_BOTH_BACKENDS

pytestmark = ON_BOTH_BACKENDS

RUNNING, PAUSED, ERROR = 1, 2, 3


async def _ingest(daemon: Daemon, seed: int, count: int) -> list[int]:
    records = fleet_records(seed, count, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), count, ndjson=True)
    return ids_of(records)


async def _delivered(receiver: Receiver, ids: list[int], what: str) -> None:
    await eventually(lambda: set(ids) <= receiver.id_set(), what=what)


async def _status_is(daemon: Daemon, stream_id: int, status: int) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        stream = await daemon.stream(stream_id)
        return stream if stream["status"]["id"] == status else None

    found: dict[str, Any] = await eventually(
        reached, what=f"stream {stream_id} status {status}", interval_secs=API_POLL_SECS
    )
    return found


async def test_500s_for_a_while_then_200_lose_nothing_and_the_stream_keeps_running(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    first = await _ingest(daemon, 1, 5)
    await _delivered(receiver, first, "the first batch (fail fast is over once it is acknowledged)")

    receiver.script(500, 500, 500, 500)
    rest = await _ingest(daemon, 2, 25)
    await _delivered(receiver, rest, "every record despite four 500s")

    failed = [e for e in receiver.exchanges if e.status == 500]
    assert len(failed) == 4
    # The same batch was retried: same records, same Idempotency-Key, until acknowledged.
    retried = receiver.exchanges.index(failed[0])
    accepted = receiver.exchanges[retried + 4]
    assert accepted.acknowledged
    for attempt in failed:
        assert attempt.ids == accepted.ids
        assert attempt.headers["Idempotency-Key"] == accepted.headers["Idempotency-Key"]
    assert receiver.id_set() == set(first + rest)

    stream = await daemon.settled(stream_id, 30)
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None
    assert stream["stats"]["last_result_code"] == 200


async def test_503_with_retry_after_is_honoured(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon(STREAMER_RETRY_MAX_SECS="15")
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    await _delivered(receiver, await _ingest(daemon, 1, 3), "the first batch")

    receiver.script(Reply(503, headers={"Retry-After": "2"}))
    ids = await _ingest(daemon, 2, 3)
    await _delivered(receiver, ids, "the batch after the 503")

    refused = next(i for i, e in enumerate(receiver.exchanges) if e.status == 503)
    retry = receiver.exchanges[refused + 1]
    assert retry.ids == receiver.exchanges[refused].ids
    waited = retry.arrived - receiver.exchanges[refused].arrived
    assert waited >= 2.0, f"the retry came {waited:.3f} s after a 503 with Retry-After: 2"
    assert (await daemon.status(stream_id)) == RUNNING


@pytest.mark.parametrize(
    ("status", "description"), [(400, "Bad Request"), (500, "Internal Server Error")]
)
async def test_a_refused_first_request_fails_fast(
    daemon: Daemon, new_receiver: NewReceiver, status: int, description: str
) -> None:
    receiver = await new_receiver()
    receiver.script(Reply(status, body=b"no such customer"))
    stream_id = await daemon.create_stream(receiver.url, size=10)
    await _ingest(daemon, 1, 3)

    stream = await _status_is(daemon, stream_id, ERROR)
    assert stream["status"]["description"] == "Error"
    error = stream["error"]
    assert error["http_status"] == status
    assert description in error["message"], error
    assert error["at"]
    # At once: one request, no retry, nothing counted as delivered.
    assert len(receiver.exchanges) == 1
    assert stream["stats"]["delivered_records"] == 0
    assert stream["stats"]["last_result_code"] == status


async def test_a_4xx_after_deliveries_is_fatal_at_once(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    await _delivered(receiver, await _ingest(daemon, 1, 3), "the first batch")

    receiver.script(422)
    await _ingest(daemon, 2, 3)
    stream = await _status_is(daemon, stream_id, ERROR)
    assert stream["error"]["http_status"] == 422
    assert "Unprocessable" in stream["error"]["message"]
    assert [e.status for e in receiver.exchanges] == [200, 422]


@pytest.mark.parametrize("outage", ["closed port", "503"])
async def test_outage_longer_than_the_window_errors_and_restart_resumes_from_the_cursor(
    daemon: Daemon, new_receiver: NewReceiver, outage: str
) -> None:
    size = 10
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=size)
    before = await _ingest(daemon, 1, 25)
    await _delivered(receiver, before, "the records before the outage")

    await daemon.settled(stream_id, 25)  # the position is past the first records

    if outage == "closed port":
        await receiver.stop()
    else:
        receiver.default = Reply(503)
    during = await _ingest(daemon, 2, 25)

    stream = await _status_is(daemon, stream_id, ERROR)  # window: STREAMER_RETRY_MAX_SECS=3
    error = stream["error"]
    assert error["message"]
    if outage == "503":
        assert error["http_status"] == 503
        assert "Service Unavailable" in error["message"]
        assert any(e.status == 503 for e in receiver.exchanges)
    else:
        assert error["http_status"] is None
    assert stream["stats"]["delivered_records"] == 25
    restart_path = f"/api/v2/data_stream/{stream_id}/restart"

    if outage == "503":
        # A restart before the fix fails fast: one request, back to Error, no retries.
        tried = len(receiver.exchanges)
        assert (await daemon.request("POST", restart_path)).status == 202
        await eventually(lambda: len(receiver.exchanges) == tried + 1, what="one new attempt")
        # The attempt arrived, so the restarted worker runs: the next Error is its own.
        stream = await _status_is(daemon, stream_id, ERROR)
        assert stream["error"]["http_status"] == 503
        assert len(receiver.exchanges) == tried + 1

    if outage == "closed port":
        await receiver.start()  # the same port again
    else:
        receiver.default = Reply(200)
    restarted_at = len(receiver.exchanges)
    response = await daemon.request("POST", restart_path)
    assert response.status == 202, response.text

    await _delivered(receiver, during, "the records sent during the outage, after the restart")
    after = [i for e in receiver.exchanges[restarted_at:] if e.acknowledged for i in e.ids]
    # Resumed from the cursor: nothing acknowledged before the outage is sent again.
    assert not set(after) & set(before)
    assert sorted(after) == sorted(during)
    stream = await daemon.settled(stream_id, 50)
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None


async def test_restart_of_a_paused_stream_is_a_conflict_and_resume_delivers_what_waited(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    path = f"/api/v2/data_stream/{stream_id}"
    await _delivered(receiver, await _ingest(daemon, 1, 3), "the first batch")
    await daemon.settled(stream_id, 3)

    assert (await daemon.request("PATCH", path, json={"status": {"id": PAUSED}})).status == 202
    assert (await daemon.status(stream_id)) == PAUSED
    waited = await _ingest(daemon, 2, 12)
    stream = await daemon.stream(stream_id)
    assert stream["stats"]["pending_records"] == 12  # kept while paused
    restart = await daemon.request("POST", f"{path}/restart")
    assert restart.status == 409
    assert restart.json()["error_code"] == 409
    assert not set(waited) & receiver.id_set()

    assert (await daemon.request("PATCH", path, json={"status": {"id": RUNNING}})).status == 202
    await _delivered(receiver, waited, "what waited while the stream was paused")
    assert (await daemon.settled(stream_id, 15))["status"]["id"] == RUNNING


async def test_retry_after_longer_than_the_window_is_never_cut_short(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    # Window 3 s (STREAMER_RETRY_MAX_SECS); the destination asks for 6 s. Honouring it means
    # no request before those 6 s: either a retry after them, or giving up (Error) without one.
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    await _delivered(receiver, await _ingest(daemon, 1, 3), "the first batch")

    receiver.default = Reply(429, headers={"Retry-After": "6"})
    await _ingest(daemon, 2, 3)
    stream = await _status_is(daemon, stream_id, ERROR)
    assert stream["error"]["http_status"] == 429
    answers = receiver.exchanges[1:]
    gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(answers)]
    assert all(gap >= 6.0 for gap in gaps), f"retried after {min(gaps):.2f} s, not 6"
