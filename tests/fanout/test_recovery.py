"""Isolation and recovery in the fan-out engine: a record a renderer fails on costs that record
only; the service's own errors hold a stream up without putting it in Error; a destination
that disappears after deliveries is retried for the window; a stream whose connector cannot be
built is in Error with the reason while the others deliver.

Driven over a real SQLite log with the in-memory connector double, as ``test_worker``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import streamer.fanout.pages as pages_module
from connectors.base import DestinationMissing, FatalError
from schemas import Kind, Version, dumps_stored, loads_stored
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import LogError, LogFullError, Position, StreamStatus
from streamer.log.jetstream import JetStreamLog
from streamer.log.kv import KvStore
from streamer.log.leases import KvLeases
from streamer.log.nats_connection import NatsOptions
from streamer.spec import StreamSpec
from tests.fanout.doubles import FakeConnector, Harness, wait_for
from tests.log.backends import RETENTION_SECS, Combined, LogAndStore, open_backend

RUNNING, ERROR = StreamStatus.RUNNING, StreamStatus.ERROR
SHORT = RetryPolicy(window_secs=0.4, base_secs=0.01, cap_secs=0.05)


# -- poison records --------------------------------------------------------------------------


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Record ids the ``old`` renderer raises for (a renderer's bug, as a user would meet it)."""
    ids: set[int] = set()

    def failing(body: bytes, kind: Kind, version: Version, *args: Any) -> bytes:
        if version is Version.OLD and loads_stored(body)["id"] in ids:
            raise TypeError("argument of type 'int' is not iterable")
        return dumps_stored(body, kind, version, *args)

    monkeypatch.setattr(pages_module, "dumps_stored", failing)
    return ids


@pytest.mark.parametrize("size", [1, 1000])
async def test_a_record_a_renderer_fails_on_is_a_dead_letter_and_the_rest_go(
    h: Harness, poison: set[int], size: int
) -> None:
    old = await h.create("old", version="old", size=size)
    new = await h.create("new", version="new", size=size)
    stored = await h.append(usage=7, organisation=1)
    bad = stored[3]
    poison.add(bad.record["id"])

    await wait_for(lambda: h.state(old).position.offset == h.log.last_offset)
    await wait_for(lambda: len(h["new"].received) == 7)

    assert h["old"].offsets == [s.offset for s in stored if s is not bad]
    assert h["new"].offsets == [s.offset for s in stored]
    await wait_for(lambda: h.state(old).status == RUNNING)  # Pending until then
    state = h.state(old)
    assert (state.error, state.position.delivered) == (None, 6)
    (letter,) = await h.log.dead_letters(old)
    assert (letter.offset, letter.body) == (bad.offset, bad.body)
    assert letter.reason == (
        "the record cannot be rendered as JSON in format old: "
        "TypeError: argument of type 'int' is not iterable"
    )
    assert h.sample("streamer_records_dead_lettered_total", old) == 1
    await wait_for(lambda: h.state(new).status == RUNNING)  # Pending until then
    assert await h.log.dead_letters(new) == []

    await h.append(usage=2, organisation=1)  # the stream goes on
    await wait_for(lambda: len(h["old"].received) == 8)


async def test_a_replayed_dead_letter_that_still_cannot_be_rendered_stays_one(
    h: Harness, poison: set[int]
) -> None:
    stream = await h.create("old", version="old")
    stored = await h.append(usage=3, organisation=1)
    poison.add(stored[0].record["id"])
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert len(h["old"].received) == 2

    assert await h.fanout.replay_dead_letters(stream) == 1
    await letters_settle(h, stream)

    (letter,) = await h.log.dead_letters(stream)
    assert letter.offset == stored[0].offset
    assert "cannot be rendered" in letter.reason
    await wait_for(lambda: h.state(stream).status == RUNNING)  # Pending until then
    assert len(h["old"].attempts) == 1  # nothing left to send in the replay


@pytest.mark.nats
async def test_a_replay_asked_for_through_another_replica_is_sent_by_the_one_delivering(
    tmp_path: Path, poison: set[int]
) -> None:
    async with open_backend("nats", tmp_path) as (log, store, server):
        assert server is not None
        options = NatsOptions(server.url)
        other_log = await JetStreamLog.open(options, RETENTION_SECS)
        other_store = await KvStore.open(options)
        leases, other_leases = await KvLeases.open(options), await KvLeases.open(options)
        holder = Harness(Combined(log, store), leases=leases)
        other = Harness(
            Combined(other_log, other_store), destinations=holder.destinations, leases=other_leases
        )
        try:
            stream = await holder.create("old", version="old")
            await holder.fanout.sync()  # takes the lease: the other replica will not
            stored = await holder.append(usage=3, organisation=1)
            poison.add(stored[0].record["id"])
            await wait_for(lambda: len(holder["old"].received) == 2)
            deadline = time.monotonic() + 10.0
            while len(await other_store.dead_letters(stream)) != 1:  # its mirror catches up
                assert time.monotonic() < deadline, "the dead letter never reached the other"
                await asyncio.sleep(0.005)
            await other.fanout.sync()
            assert other.fanout.get(stream) is not None  # known to it, not delivered by it

            poison.clear()  # the cause fixed; the replay is asked for through the other
            assert await other.fanout.replay_dead_letters(stream) == 1
            following = asyncio.create_task(holder.fanout.follow())
            try:
                await wait_for(lambda: len(holder["old"].received) == 3)
            finally:
                following.cancel()
            assert sorted(holder["old"].offsets) == [s.offset for s in stored]
            assert not any(connector.sent for connector in other.connectors)  # by the holder alone
            await letters_settle(holder, stream)
            assert await store.dead_letters(stream) == []
        finally:
            await other.fanout.stop(1.0)
            await holder.fanout.stop(1.0)
            for closing in (other_leases, leases, other_store, other_log):
                await closing.aclose()


async def letters_settle(h: Harness, stream: int, timeout: float = 10.0) -> None:
    """Return once none of the stream's dead letters is queued for replay."""
    deadline = time.monotonic() + timeout
    while any(letter.queued for letter in await h.log.dead_letters(stream)):
        if time.monotonic() > deadline:
            raise AssertionError("the replay never finished")
        await asyncio.sleep(0.005)


# -- the service's own errors ----------------------------------------------------------------


async def test_a_store_that_cannot_write_holds_the_stream_up_and_it_resumes_by_itself(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: len(h["s"].received) == 2)
    full = asyncio.Event()
    full.set()
    commit = h.log.commit_position

    async def commit_unless_full(stream_id: int, position: Position) -> None:
        if full.is_set():
            raise LogFullError("the log is full: database or disk is full")
        await commit(stream_id, position)

    monkeypatch.setattr(h.log, "commit_position", commit_unless_full)

    await h.append(usage=5, organisation=1)
    await wait_for(lambda: bool(h.fanout.troubles()))
    assert h.fanout.troubles() == {
        stream: "LogFullError: the log is full: database or disk is full"
    }
    await wait_for(lambda: (h.sample("streamer_delivery_service_errors_total", stream) or 0) >= 3)
    assert h.state(stream).status == RUNNING
    assert h.state(stream).error is None

    full.clear()
    await wait_for(lambda: not h.fanout.troubles())
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    await h.wait_saved(stream, lambda s: s.position.offset == h.log.last_offset)
    assert set(h["s"].offsets) == set(h.offsets(lambda s: s.organisation == 1))
    assert h.state(stream).status == RUNNING
    assert (await h.saved(stream)).status == RUNNING


async def test_a_failing_log_read_is_retried_not_an_error(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = await h.create("s")
    failures = [OSError("I/O error")] * 3
    read = h.log.read

    async def flaky_read(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await read(*args)

    monkeypatch.setattr(h.log, "read", flaky_read)
    await h.append(usage=4, organisation=1)

    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert failures == []
    assert h.sample("streamer_delivery_service_errors_total", stream) == 3
    assert h.fanout.troubles() == {}
    await wait_for(lambda: h.state(stream).status == RUNNING)  # Pending until then
    assert len(h["s"].received) == 4


async def test_a_bug_in_the_delivery_path_is_retried_and_told_without_its_message(
    h: Harness,
) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    h["s"].default = KeyError("https://user:secret@receiver.example")
    await h.append(usage=3, organisation=1)

    told = {stream: "internal error (KeyError), see the service log"}
    await wait_for(lambda: h.fanout.troubles() == told)
    await wait_for(lambda: (h.sample("streamer_delivery_service_errors_total", stream) or 0) >= 2)
    assert h.state(stream).status == RUNNING

    h["s"].default = None
    await wait_for(lambda: len(h["s"].received) == 3)
    assert h.fanout.troubles() == {}
    assert h.state(stream).status == RUNNING


async def test_a_destination_failure_while_the_store_is_full_is_still_an_error(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: h.state(stream).status == RUNNING)
    set_status = h.log.set_status

    async def full_for_errors(stream_id: int, status: StreamStatus, error: Any) -> None:
        if status == ERROR:
            raise LogFullError("the log is full: database or disk is full")
        await set_status(stream_id, status, error)

    monkeypatch.setattr(h.log, "set_status", full_for_errors)
    h["s"].script.append(FatalError("401 Unauthorized", 401))
    await h.append(usage=1, organisation=1)

    await wait_for(lambda: h.state(stream).status == ERROR)
    error = h.state(stream).error
    assert error is not None
    assert error["message"] == "401 Unauthorized"
    assert h.sample("streamer_stream_status", stream) == ERROR
    assert h.fanout.troubles() == {}


# -- destinations that disappear -------------------------------------------------------------


async def test_a_destination_missing_on_the_first_send_fails_fast(h: Harness) -> None:
    h["s"].default = DestinationMissing("404 Not Found", 404)
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)

    await wait_for(lambda: h.state(stream).status == ERROR)

    assert len(h["s"].attempts) == 1


async def test_a_destination_that_disappears_after_deliveries_is_retried_for_the_window(
    log: LogAndStore,
) -> None:
    h = Harness(log, SHORT)
    try:
        stream = await h.create("s")
        await h.append(usage=2, organisation=1)
        await wait_for(lambda: len(h["s"].received) == 2)
        h["s"].default = DestinationMissing("Kinesis PutRecords: ResourceNotFoundException", 400)

        await h.append(usage=3, organisation=1)
        await wait_for(lambda: h.state(stream).status == ERROR)

        failed = h["s"].attempts[1:]
        assert len(failed) > 2
        assert failed[-1].at - failed[0].at >= SHORT.window_secs - 0.01
        error = h.state(stream).error
        assert error is not None
        assert error["message"] == "Kinesis PutRecords: ResourceNotFoundException"
        assert len(h["s"].received) == 2

        h["s"].default = None  # it is back: a restart delivers the backlog
        await h.fanout.restart(stream)
        await wait_for(lambda: len(h["s"].received) == 5)
        await wait_for(lambda: h.state(stream).status == RUNNING)  # Pending until then
    finally:
        await h.fanout.stop(1.0)


async def test_a_destination_back_within_the_window_loses_nothing(log: LogAndStore) -> None:
    h = Harness(log, RetryPolicy(window_secs=10.0, base_secs=0.01, cap_secs=0.05))
    try:
        stream = await h.create("s")
        await h.append(usage=2, organisation=1)
        await wait_for(lambda: len(h["s"].received) == 2)
        h["s"].script.extend([DestinationMissing("410 Gone", 410)] * 3)

        await h.append(usage=3, organisation=1)
        await wait_for(lambda: len(h["s"].received) == 5)

        assert len(h["s"].attempts) == 5
        await wait_for(lambda: h.state(stream).status == RUNNING)  # Pending until then
    finally:
        await h.fanout.stop(1.0)


# -- streams that cannot be built ------------------------------------------------------------


class Refusing(Harness):
    """Builds no connector for streams named in ``refused``."""

    refused: set[str]

    def _connector(self, spec: StreamSpec, stream_id: int | None) -> FakeConnector:
        if spec.name in self.refused:
            raise ValueError("destination refused: 127.0.0.1 is not a public address")
        return super()._connector(spec, stream_id)


async def test_a_stream_that_cannot_be_built_is_in_error_and_the_others_deliver(
    log: LogAndStore,
) -> None:
    h = Refusing(log)
    h.refused = {"private"}
    try:
        private, _ = await h.restore(("private", 1, {}), ("public", 1, {}))

        reason = (
            "the destination cannot be built: "
            "destination refused: 127.0.0.1 is not a public address"
        )
        state = h.state(private)
        assert state.status == ERROR
        assert state.error is not None
        assert state.error["message"] == reason
        assert (await h.saved(private)).error == state.error

        await h.append(usage=3, organisation=1)
        await wait_for(lambda: len(h["public"].received) == 3)

        for operation in (h.fanout.restart, _resume_via(h)):
            with pytest.raises(ValueError, match="^" + reason):
                await operation(private)
            assert h.state(private).status == ERROR

        h.refused = set()  # the setting is back
        await h.fanout.restart(private)
        await wait_for(lambda: len(h["private"].received) == 3)
    finally:
        await h.fanout.stop(1.0)


def _resume_via(h: Harness) -> Callable[[int], Any]:
    async def pause_then_resume(stream_id: int) -> None:
        await h.fanout.pause(stream_id)
        await h.fanout.resume(stream_id)

    return pause_then_resume


async def test_alone_on_its_store_the_engine_does_not_read_it_again_and_again(
    h: Harness,
) -> None:
    """Without leases (SQLite: one service per data directory) every change to the streams
    is the engine's own: following the store would only re-read it twice a second."""
    await asyncio.wait_for(h.fanout.follow(), 5)


async def test_a_pause_the_store_refused_leaves_the_stream_delivering_after_the_next_sync(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pause stops the worker before it stores the status: if the store refuses (NATS
    away), the stream is still Running everywhere and must go on delivering."""
    stream = await h.create("s")
    await h.append(usage=2, organisation=1)
    # acknowledged and stored: a pause halfway (the receiver has the records, the store not
    # yet the position) would have them sent again after the sync
    await h.wait_saved(stream, lambda s: s.status == RUNNING and s.position.delivered == 2)
    set_status = h.log.set_status

    async def refuse(*args: Any) -> None:
        raise LogError("storing a stream failed: NATS did not answer (TimeoutError)")

    monkeypatch.setattr(h.log, "set_status", refuse)
    with pytest.raises(LogError):
        await h.fanout.pause(stream)
    monkeypatch.setattr(h.log, "set_status", set_status)
    assert h.state(stream).status == RUNNING

    await h.fanout.sync()
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h["s"].received) == 5)
