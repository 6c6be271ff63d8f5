"""The fan-out engine and its per-stream workers, driven end to end over a real SQLite log with
an in-memory connector double (``tests/fanout/doubles.py``).

Nothing here sleeps to synchronise: tests wait on conditions with a deadline (``wait_for``),
and timings are read from the monotonic timestamps the double records, only ever as lower
bounds, so a slow machine makes no test fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

import streamer.fanout.engine as engine_module
import streamer.fanout.pages as pages_module
from connectors.base import FatalError, RetryableError, SendResult
from schemas import Kind, Version, dumps, dumps_stored
from streamer.fanout.engine import StreamConflict
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import StreamStatus
from tests.fanout.doubles import Block, Harness, Stored, stream_spec, wait_for
from tests.log.backends import LogAndStore

USAGE_ONLY, EVENTS_ONLY, BOTH = 1, 2, 3
RUNNING, PAUSED, ERROR, PENDING = (
    StreamStatus.RUNNING,
    StreamStatus.PAUSED,
    StreamStatus.ERROR,
    StreamStatus.PENDING,
)


def of(organisation: int) -> Callable[[Stored], bool]:
    return lambda stored: stored.organisation == organisation


# -- batching and selection ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 1000])
async def test_batches_never_exceed_the_size_and_keep_log_order(h: Harness, size: int) -> None:
    stream = await h.create("s", organisation=1, size=size)
    await h.append(events=12, usage=12, organisation=1)
    await h.append(events=10, usage=6, organisation=1)
    await h.append(usage=30)  # other organisations too

    expected = h.offsets(of(1))
    await wait_for(lambda: h["s"].offsets == expected)

    batches = [attempt.batch for attempt in h["s"].attempts]
    assert all(1 <= len(batch.payloads) <= size for batch in batches)
    if size < 24:  # the first append alone fills a batch
        assert max(len(batch.payloads) for batch in batches) == size
    by_offset = {stored.offset: stored for stored in h.stored}
    for batch in batches:
        assert len(batch.kinds) == len(batch.offsets) == len(batch.payloads)
        assert list(batch.kinds) == [by_offset[o].kind.value for o in batch.offsets]
        assert list(batch.payloads) == [by_offset[o].body for o in batch.offsets]
        assert batch.key == f"{stream}-{batch.offsets[0]}-{batch.offsets[-1]}"
    await wait_for(lambda: h.state(stream).position.delivered == len(expected))  # acknowledged


def _selected(
    kinds: int, event_types: set[int] | None, alerts: set[bool] | None
) -> Callable[[Stored], bool]:
    """The stream's selection, computed from the records themselves."""

    def selected(stored: Stored) -> bool:
        if stored.organisation != 2:
            return False
        if stored.kind is Kind.USAGE:
            return kinds in (USAGE_ONLY, BOTH)
        record = stored.record
        return (
            kinds in (EVENTS_ONLY, BOTH)
            and (event_types is None or record["event_type"]["id"] in event_types)
            and (alerts is None or record["alert"] in alerts)
        )

    return selected


@pytest.mark.parametrize(
    ("kinds", "filters", "event_types", "alerts"),
    [
        (USAGE_ONLY, [], None, None),
        (EVENTS_ONLY, [], None, None),
        (BOTH, [], None, None),
        (BOTH, [{"field": "event_type_id", "value": [11, 19, 1]}], {11, 19, 1}, None),
        (EVENTS_ONLY, [{"field": "alert", "value": [True]}], None, {True}),
        (EVENTS_ONLY, [{"field": "alert", "value": [False]}], None, {False}),
        (
            BOTH,
            [
                {"field": "event_type_id", "value": [11, 19, 1]},
                {"field": "alert", "value": [True]},
            ],
            {11, 19, 1},
            {True},
        ),
    ],
    ids=["usage", "events", "both", "event-types", "alerts", "no-alerts", "types-and-alerts"],
)
async def test_a_stream_gets_its_organisations_records_of_its_kinds_that_pass_its_filters(
    h: Harness,
    kinds: int,
    filters: list[dict[str, Any]],
    event_types: set[int] | None,
    alerts: set[bool] | None,
) -> None:
    stream = await h.create("s", organisation=2, kinds=kinds, filters=filters, size=10)
    await h.append(events=90, usage=60)
    await h.append(events=30, usage=20)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    expected = h.offsets(_selected(kinds, event_types, alerts))
    assert 0 < len(expected) < len(h.stored)
    assert h["s"].offsets == expected


# -- acknowledgement and failure -------------------------------------------------------------


async def test_the_cursor_moves_only_after_the_destination_acknowledged(h: Harness) -> None:
    gate = Block()
    h["s"].script.append(gate)
    stream = await h.create("s")
    await h.append(usage=5, organisation=1)

    await wait_for(lambda: len(h["s"].attempts) == 1)
    assert h.state(stream).position.offset == 0
    assert (await h.saved(stream)).position.offset == 0
    assert h.state(stream).position.delivered == 0

    gate.release.set()
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert h["s"].offsets == h.offsets(of(1))
    await h.wait_saved(
        stream, lambda s: s.position.offset == h.log.last_offset and s.position.delivered == 5
    )


async def test_a_fatal_error_stops_the_stream_where_it_was(h: Harness) -> None:
    stream = await h.create("s")
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h["s"].received) == 3)
    acknowledged = h.log.last_offset
    h["s"].script.append(FatalError("401 Unauthorized: bad key", 401))

    await h.append(usage=4, organisation=1)
    await wait_for(lambda: h.state(stream).status == ERROR)

    state = h.state(stream)
    assert state.position.offset == acknowledged
    assert state.error is not None
    assert state.error["message"] == "401 Unauthorized: bad key"
    assert state.error["http_status"] == 401
    assert state.position.last_result_code == 401
    assert len(h["s"].attempts) == 2  # a fatal error is not retried
    assert h["s"].offsets == h.offsets(of(1))[:3]
    saved = await h.saved(stream)
    assert (saved.status, saved.position.offset, saved.error) == (ERROR, acknowledged, state.error)
    assert h.sample("streamer_stream_status", stream) == ERROR


async def test_a_new_stream_fails_fast_on_its_first_send(h: Harness) -> None:
    h["s"].default = RetryableError("503 Service Unavailable", 503)
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)

    await wait_for(lambda: h.state(stream).status == ERROR)

    assert len(h["s"].attempts) == 1  # not retried, although the error is retryable
    assert h.state(stream).error == {
        "message": "503 Service Unavailable",
        "http_status": 503,
        "at": h.state(stream).error["at"],  # type: ignore[index]
    }
    assert h.state(stream).position.offset == 0


async def test_retryable_errors_then_success_deliver_every_record_once(h: Harness) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].script.extend(
        [
            RetryableError("connection reset"),
            RetryableError("503 Service Unavailable", 503),
            RetryableError("timed out"),
        ]
    )
    await h.append(events=4, usage=6, organisation=1)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    assert h["s"].offsets == h.offsets(of(1))
    attempts = h["s"].attempts
    assert len(attempts) == 4
    assert len({(a.batch.key, tuple(a.batch.payloads)) for a in attempts}) == 1  # same batch
    state = h.state(stream)
    assert (state.status, state.error, state.position.delivered) == (RUNNING, None, 10)
    assert h.sample("streamer_records_failed_total", stream) == 30
    assert h.sample("streamer_records_retried_total", stream) == 30
    assert h.sample("streamer_records_delivered_total", stream) == 10


async def test_a_stream_goes_to_error_when_the_retry_window_closes(log: LogAndStore) -> None:
    policy = RetryPolicy(window_secs=0.5, base_secs=0.01, cap_secs=0.05)
    h = Harness(log, policy)
    try:
        (stream,) = await h.restore(("s", 1, {}))
        h["s"].default = RetryableError("502 Bad Gateway", 502)
        await h.append(usage=2, organisation=1)

        await wait_for(lambda: h.state(stream).status == ERROR)

        attempts = h["s"].attempts
        assert len(attempts) > 2
        assert attempts[-1].at - attempts[0].at >= policy.window_secs - 0.01
        state = h.state(stream)
        assert state.position.offset == 0
        assert state.error is not None
        assert (state.error["message"], state.error["http_status"]) == ("502 Bad Gateway", 502)
        assert h["s"].received == []
    finally:
        await h.fanout.stop(1.0)


async def test_retry_after_is_honoured(h: Harness) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].script.append(RetryableError("429 Too Many Requests", 429, retry_after=0.3))
    await h.append(usage=2, organisation=1)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    first, second = h["s"].attempts
    assert second.at - first.at >= 0.3 - 0.005  # the backoff alone would be at most 0.01 s
    assert h["s"].offsets == h.offsets(of(1))


async def test_a_partial_failure_resends_only_the_listed_records(h: Harness) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].script.extend([SendResult(207, retry=[1, 3]), SendResult(207, retry=[0])])
    await h.append(usage=5, organisation=1)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    first, second, third = (attempt.batch for attempt in h["s"].attempts)
    assert second.offsets == [first.offsets[1], first.offsets[3]]
    assert second.payloads == [first.payloads[1], first.payloads[3]]
    assert third.offsets == [first.offsets[1]]
    assert first.key == second.key == third.key
    assert sorted(h["s"].offsets) == h.offsets(of(1))  # each once
    assert h.state(stream).position.delivered == 5


async def test_records_rejected_before_a_retry_do_not_count_as_delivered(h: Harness) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].script.append(SendResult(207, retry=[0], rejected=[(1, "schema violation")]))
    await h.append(usage=3, organisation=1)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    assert len(h["s"].received) == 2
    assert h.state(stream).position.delivered == 2
    assert h.sample("streamer_records_delivered_total", stream) == 2


# -- pause, resume, restart ------------------------------------------------------------------


async def test_a_paused_stream_keeps_its_records_and_delivers_them_on_resume(h: Harness) -> None:
    paused = await h.create("paused")
    await h.create("witness")
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h["paused"].received) == 3)
    await h.wait_saved(paused, lambda s: s.position.delivered == 3)  # not paused halfway

    await h.fanout.pause(paused)
    assert h.state(paused).status == PAUSED
    assert (await h.saved(paused)).status == PAUSED
    await h.append(events=3, usage=3, organisation=1)
    await wait_for(lambda: len(h["witness"].received) == 9)
    assert len(h["paused"].received) == 3
    assert h["paused"].unclosed_senders == []  # its connector was released

    await h.fanout.resume(paused)
    await wait_for(lambda: h.state(paused).position.offset == h.log.last_offset)
    assert h["paused"].offsets == h.offsets(of(1))
    assert h.state(paused).status == RUNNING


async def test_resuming_twice_starts_one_worker(h: Harness) -> None:
    stream = await h.create("s")
    await h.fanout.pause(stream)

    await h.fanout.resume(stream)
    await h.fanout.resume(stream)
    await h.append(usage=4, organisation=1)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    await h.fanout.stop(5.0)

    assert h["s"].offsets == h.offsets(of(1))
    assert h["s"].unclosed_senders == []


async def test_a_restart_resumes_an_errored_stream_from_its_last_acknowledged_record(
    h: Harness,
) -> None:
    stream = await h.create("s")
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h["s"].received) == 3)
    h["s"].script.append(FatalError("403 Forbidden", 403))
    await h.append(usage=4, organisation=1)
    await wait_for(lambda: h.state(stream).status == ERROR)
    await h.append(usage=2, organisation=1)

    await h.fanout.restart(stream)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)

    assert h["s"].offsets == h.offsets(of(1))  # the failed batch once, nothing twice
    state = h.state(stream)
    assert (state.status, state.error) == (RUNNING, None)
    await h.wait_saved(stream, lambda s: s.status == RUNNING and s.error is None)


async def test_a_restart_fails_fast_again(h: Harness) -> None:
    stream = await h.create("s")
    h["s"].script.append(FatalError("403 Forbidden", 403))
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: h.state(stream).status == ERROR)
    h["s"].default = RetryableError("503 Service Unavailable", 503)

    await h.fanout.restart(stream)
    await wait_for(lambda: h.state(stream).status == ERROR and len(h["s"].attempts) > 1)

    assert len(h["s"].attempts) == 2
    assert h.state(stream).error["http_status"] == 503  # type: ignore[index]


async def test_a_new_stream_is_pending_and_a_restarted_one_pending_again(h: Harness) -> None:
    """No status is written when the stored one already holds (a lease taken again); a new
    stream is Pending all the same, in the store and the metrics, and a restart of a running
    one stores Pending."""
    stream = await h.create("s")
    assert (await h.saved(stream)).status == PENDING
    assert h.sample("streamer_stream_status", stream) == PENDING
    await h.append(usage=2, organisation=1)
    await h.wait_saved(stream, lambda saved: saved.status == RUNNING)
    h["s"].default = Block()  # the restarted stream's first send waits

    await h.fanout.restart(stream)

    assert (await h.saved(stream)).status == PENDING
    assert h.sample("streamer_stream_status", stream) == PENDING


async def test_restarting_a_paused_stream_is_a_conflict(h: Harness) -> None:
    stream = await h.create("s")
    await h.fanout.pause(stream)

    with pytest.raises(StreamConflict):
        await h.fanout.restart(stream)
    assert h.state(stream).status == PAUSED


async def test_a_service_restart_resumes_what_was_running_from_its_stored_cursor(
    log: LogAndStore,
) -> None:
    first = Harness(log)
    running = await first.create("running")
    paused = await first.create("paused")
    failed = await first.create("failed")
    first["failed"].script.append(FatalError("404 Not Found", 404))
    await first.append(usage=3, organisation=1)
    await wait_for(
        lambda: (
            first.state(running).position.offset == log.last_offset
            and first.state(paused).position.offset == log.last_offset
            and first.state(failed).status == ERROR
        )
    )
    await first.fanout.pause(paused)
    await first.fanout.stop(1.0)
    assert (
        await first.saved(running)
    ).position.offset == log.last_offset  # written before stop returned

    second = Harness(log, destinations=first.destinations)
    built = {name: second[name].built for name in ("running", "paused", "failed")}
    await second.fanout.start()
    try:
        await second.append(usage=2, organisation=1)
        await wait_for(lambda: second.state(running).position.offset == log.last_offset)

        assert second["running"].offsets == first.offsets(of(1)) + second.offsets(of(1))
        assert second.state(paused).status == PAUSED
        assert second.state(failed).status == ERROR
        assert second["paused"].built == built["paused"]  # no worker for them
        assert second["failed"].built == built["failed"]
    finally:
        await second.fanout.stop(1.0)


# -- isolation and shutdown ------------------------------------------------------------------


async def test_a_stuck_stream_does_not_delay_another(h: Harness) -> None:
    h["stuck"].default = Block()  # never answers
    await h.create("stuck")
    await h.create("fine")

    await h.append(usage=5, organisation=1)
    await wait_for(lambda: len(h["fine"].received) == 5)
    await h.append(events=5, organisation=1)
    await wait_for(lambda: len(h["fine"].received) == 10)

    assert h["fine"].offsets == h.offsets(of(1))
    assert len(h["stuck"].attempts) == 1  # still hanging on its first send
    assert h["stuck"].received == []


async def test_stop_cancels_a_stuck_send_at_the_deadline(h: Harness) -> None:
    h["stuck"].default = Block()
    stream = await h.create("stuck")
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: len(h["stuck"].attempts) == 1)

    started = time.monotonic()
    await asyncio.wait_for(h.fanout.stop(0.2), 10)

    assert time.monotonic() - started >= 0.2 - 0.01  # it gave the send its deadline
    assert h["stuck"].cancelled == 1
    assert h["stuck"].unclosed_senders == []
    saved = await h.saved(stream)
    # unacknowledged: sent again later; nothing delivered yet, so the stream is still Pending
    assert (saved.status, saved.position.offset) == (PENDING, 0)


async def test_stop_lets_an_in_flight_send_finish_within_the_deadline(h: Harness) -> None:
    gate = Block()
    h["s"].script.append(gate)
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: len(h["s"].attempts) == 1)

    stopping = asyncio.ensure_future(h.fanout.stop(10.0))
    await wait_for(lambda: h.fanout._workers[stream][0].stopping)
    gate.release.set()
    await asyncio.wait_for(stopping, 10)

    assert h["s"].cancelled == 0
    assert h["s"].offsets == h.offsets(of(1))
    saved = await h.saved(stream)
    assert (saved.status, saved.position.offset) == (RUNNING, h.log.last_offset)


async def test_a_shutdown_during_retries_is_not_a_failure(h: Harness) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].default = RetryableError("503 Service Unavailable", 503)
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: len(h["s"].attempts) >= 2)

    await h.fanout.stop(5.0)

    saved = await h.saved(stream)
    assert (saved.status, saved.error, saved.position.offset) == (RUNNING, None, 0)


async def test_a_pause_lets_the_send_in_flight_finish_and_it_is_not_sent_again(
    h: Harness,
) -> None:
    gate = Block()
    h["s"].script.append(gate)
    stream = await h.create("s")
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h["s"].attempts) == 1)
    worker = h.fanout._workers[stream][0]

    pausing = asyncio.ensure_future(h.fanout.pause(stream))
    await wait_for(lambda: worker.stopping)
    assert not pausing.done()  # the pause waits for the destination's answer
    gate.release.set()
    await asyncio.wait_for(pausing, 10)

    assert h["s"].cancelled == 0
    saved = await h.saved(stream)
    assert (saved.status, saved.position.offset) == (PAUSED, h.log.last_offset)
    await h.fanout.resume(stream)
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert h["s"].offsets == h.offsets(of(1))  # every record once
    assert len(h["s"].attempts) == 2


async def test_a_pause_sends_no_batch_that_was_still_filling(log: LogAndStore) -> None:
    h = Harness(log, linger_secs=3600.0, max_wait_secs=3600.0)  # the batch waits to fill
    try:
        stream = await h.create("s", size=10)
        await h.append(usage=2, organisation=1)
        await wait_for(lambda: bool(h.fanout._quiet._waiting))  # waiting for 8 more, or quiet

        await asyncio.wait_for(h.fanout.pause(stream), 10)

        assert h["s"].attempts == []
        assert (await h.saved(stream)).position.offset == 0
    finally:
        await h.fanout.stop(1.0)


async def test_a_pause_cancels_a_send_still_hanging_after_the_grace(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "HALT_GRACE_SECS", 0.1)
    h["s"].script.append(Block())  # never answers
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: len(h["s"].attempts) == 1)

    await asyncio.wait_for(h.fanout.pause(stream), 10)

    assert h["s"].cancelled == 1
    assert h["s"].unclosed_senders == []
    saved = await h.saved(stream)
    assert (saved.status, saved.position.offset) == (PAUSED, 0)
    await h.fanout.resume(stream)  # unacknowledged: sent again
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert h["s"].offsets == h.offsets(of(1))


async def test_a_pause_during_a_back_off_does_not_wait_for_the_next_try(
    log: LogAndStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the back-off (an hour) nor the grace (an hour) holds a pause up: a stream that
    waits for its next try has no send in flight."""
    monkeypatch.setattr(engine_module, "HALT_GRACE_SECS", 3600.0)
    hour = RetryPolicy(window_secs=7200.0, base_secs=3600.0, cap_secs=3600.0)
    h = Harness(log, policy=hour)
    try:
        (stream,) = await h.restore(("s", 1, {}))
        h["s"].default = RetryableError("503 Service Unavailable", 503)
        await h.append(usage=2, organisation=1)
        # counted as failed, the worker backs off with no await in between
        await wait_for(lambda: h.sample("streamer_records_failed_total", stream) == 2)

        await asyncio.wait_for(h.fanout.pause(stream), 10)

        saved = await h.saved(stream)
        assert (saved.status, saved.error, saved.position.offset) == (PAUSED, None, 0)
        assert len(h["s"].attempts) == 1
    finally:
        await h.fanout.stop(1.0)


# -- where a stream starts -------------------------------------------------------------------


async def test_historic_data_starts_from_the_oldest_retained_record(h: Harness) -> None:
    await h.append(usage=5, organisation=1)
    assert await h.log.trim(older_than_secs=0) == 5
    retained = await h.append(events=2, usage=2, organisation=1)

    historic = await h.create("historic", historic=True)
    current = await h.create("current")
    later = await h.append(usage=2, organisation=1)
    await wait_for(
        lambda: (
            h.state(historic).position.offset == h.log.last_offset
            and h.state(current).position.offset == h.log.last_offset
        )
    )

    assert h["historic"].offsets == [s.offset for s in retained + later]
    assert h["current"].offsets == [s.offset for s in later]


# -- shared pages and renderings -------------------------------------------------------------


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[Version]:
    """Every rendering ``Page.payload`` computes, by version."""
    calls: list[Version] = []

    def counting(body: bytes, kind: Kind, version: Version, *args: Any) -> bytes:
        calls.append(version)
        return dumps_stored(body, kind, version, *args)

    monkeypatch.setattr(pages_module, "dumps_stored", counting)
    return calls


async def test_streams_with_the_same_rendering_share_one_rendering(
    h: Harness, renders: list[Version]
) -> None:
    for name in ("a", "b"):
        await h.create(name, version="migrated")
    await h.create("old", version="old")
    await h.append(events=6, usage=6, organisation=1)

    await wait_for(lambda: all(len(h[n].received) == 12 for n in ("a", "b", "old")))

    assert renders.count(Version.MIGRATED) == 12  # not 24
    assert renders.count(Version.OLD) == 12
    expected = [dumps(s.record, s.kind, Version.MIGRATED) for s in h.stored]
    assert h["a"].payloads == h["b"].payloads == expected
    assert h["old"].payloads == [dumps(s.record, s.kind, Version.OLD) for s in h.stored]


async def test_new_json_is_the_stored_bytes_unchanged(h: Harness, renders: list[Version]) -> None:
    await h.create("a")
    await h.create("b")
    await h.append(events=5, usage=5, organisation=1)

    await wait_for(lambda: len(h["a"].received) == len(h["b"].received) == 10)

    assert h["a"].payloads == h["b"].payloads == [s.body for s in h.stored]
    assert renders == []


# -- one writer per stream row ---------------------------------------------------------------


async def test_a_change_is_what_the_engine_and_the_store_keep_while_records_flow(
    log: LogAndStore,
) -> None:
    """The engine writes the definition, the worker only the position: a change the API
    acknowledged is what a read and a restart see, however deliveries interleave with it."""
    first = Harness(log)
    try:
        gate = Block()
        first["s"].script.append(gate)
        stream = await first.create("s", organisation=1, size=3)
        await first.append(usage=10, organisation=1)
        await wait_for(lambda: len(first["s"].attempts) == 1)  # a send in flight
        worker = first.fanout._workers[stream][0]

        changed = stream_spec("s", size=3, version="old", filters=[]).model_copy(
            update={"organisation": first.state(stream).spec.organisation}
        )
        updating = asyncio.ensure_future(first.fanout.update(stream, lambda _: changed))
        await wait_for(lambda: worker.stopping)
        gate.release.set()  # the send in flight finishes; then the change is stored and applies
        await asyncio.wait_for(updating, 10)
        assert first["s"].cancelled == 0
        await first.append(usage=10, organisation=1)
        await wait_for(lambda: first.state(stream).position.offset == log.last_offset)
        await first.wait_saved(stream, lambda s: s.position.offset == log.last_offset)

        assert first.state(stream).spec == changed
        assert (await first.saved(stream)).spec == changed
    finally:
        await first.fanout.stop(1.0)
    second = Harness(log)
    await second.fanout.start()
    try:
        assert second.state(stream).spec == changed
        assert second.state(stream).status == RUNNING
    finally:
        await second.fanout.stop(1.0)


# -- lanes: one organisation's records -------------------------------------------------------


async def test_appends_wake_and_read_only_their_organisations_streams(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = {org: await h.create(f"org{org}", organisation=org) for org in range(1, 41)}
    await h.append(events=5, usage=5, organisation=1)
    await wait_for(lambda: h["org1"].offsets == h.offsets(of(1)))
    # every worker has read once at its start and now waits for records
    await wait_for(
        lambda: all(h.sample("streamer_records_pending", s) is not None for s in streams.values())
    )
    read_for: list[int] = []
    read = h.log.read

    async def counting(organisation: int, *args: Any) -> Any:
        read_for.append(organisation)
        return await read(organisation, *args)

    monkeypatch.setattr(h.log, "read", counting)
    for _ in range(5):
        await h.append(events=20, usage=20, organisation=1)

    await wait_for(lambda: h["org1"].offsets == h.offsets(of(1)))
    assert set(read_for) == {1}


async def test_a_backlog_goes_in_full_batches_and_a_quiet_log_lets_the_last_one_fill(
    log: LogAndStore,
) -> None:
    h = Harness(log, linger_secs=3600.0, max_wait_secs=3600.0)
    try:
        await h.append(usage=25, organisation=1)
        await h.create("s", organisation=1, size=10, historic=True)

        await wait_for(lambda: len(h["s"].offsets) == 20)  # not held back by the linger
        assert [len(a.batch.payloads) for a in h["s"].attempts] == [10, 10]
        await h.append(usage=3, organisation=1)
        await h.append(usage=2, organisation=1)  # the lingering batch is full now: it goes

        await wait_for(lambda: h["s"].offsets == h.offsets(of(1)))
        assert [len(a.batch.payloads) for a in h["s"].attempts] == [10, 10, 10]
    finally:
        await h.fanout.stop(1.0)


async def test_a_partial_batch_goes_once_the_log_is_quiet(log: LogAndStore) -> None:
    # the linger is long enough for the second append to come within it on a loaded machine
    h = Harness(log, linger_secs=0.5, max_wait_secs=3600.0)
    try:
        await h.create("s", organisation=1, size=100)
        await h.append(usage=3, organisation=1)
        await h.append(usage=4, organisation=2)  # another organisation's records count too

        await wait_for(lambda: h["s"].offsets == h.offsets(of(1)))
        assert [len(a.batch.payloads) for a in h["s"].attempts] == [3]
        assert h["s"].attempts[0].at >= h.last_append_at + 0.5
    finally:
        await h.fanout.stop(1.0)
