"""What a pause, change, restart or delete does to a stream's send in flight: it may finish
(``HALT_GRACE_SECS``) out of the engine's lock, so the rest of the engine goes on meanwhile,
and whatever happens to the send or to the caller, the engine keeps track of the worker.

Driven over the real log and store (SQLite and JetStream) with the connector double of
``tests/fanout/doubles.py``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
from asyncio import Task
from collections.abc import Coroutine
from typing import Any

import pytest

import streamer.fanout.engine as engine_module
from connectors.base import FatalError
from schemas import Version
from streamer.fanout.engine import StreamGone
from streamer.log.base import LogError, Position, StreamStatus
from streamer.spec import StreamSpec
from tests.fanout.doubles import Block, FakeConnector, Harness, stream_spec, wait_for

HOUR = 3600.0


async def _sending(h: Harness, name: str, gate: Block) -> int:
    """A new stream ``name`` whose first send hangs on ``gate``, once that send started."""
    h[name].script.append(gate)
    stream = await h.create(name)
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: len(h[name].attempts) == 1)
    return stream


async def _under_way(h: Harness, stream: int, operation: Coroutine[Any, Any, None]) -> Task[None]:
    """``operation`` (a pause, a change …) started, once it told the stream's worker to stop."""
    worker = h.fanout._workers[stream][0]
    started = asyncio.ensure_future(operation)
    await wait_for(lambda: worker.stopping)
    return started


@pytest.fixture
def long_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "HALT_GRACE_SECS", HOUR)


@pytest.mark.usefixtures("long_grace")
async def test_the_grace_holds_up_neither_the_store_sync_nor_other_streams(h: Harness) -> None:
    gate = Block()
    slow = await _sending(h, "slow", gate)
    other = await h.create("other")

    pausing = await _under_way(h, slow, h.fanout.pause(slow))
    await asyncio.wait_for(h.fanout.sync(), 10)  # where leases are renewed
    await asyncio.wait_for(h.fanout.pause(other), 10)
    assert h.state(other).status is StreamStatus.PAUSED
    assert h.state(slow).status is not StreamStatus.PAUSED  # still waiting for its answer
    assert slow in h.fanout._workers  # the sync did not start it again either

    gate.release.set()
    await asyncio.wait_for(pausing, 10)
    assert h.state(slow).status is StreamStatus.PAUSED
    assert h["slow"].cancelled == 0


@pytest.mark.usefixtures("long_grace")
async def test_a_pause_whose_caller_is_cancelled_leaves_no_worker_behind(h: Harness) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    pausing = await _under_way(h, stream, h.fanout.pause(stream))

    pausing.cancel()  # a shutdown drains the API before the deliveries
    await asyncio.gather(pausing, return_exceptions=True)
    gate.release.set()

    await wait_for(lambda: stream not in h.fanout._workers)  # it ended, and the engine knows
    assert h["s"].unclosed_senders == []
    assert h["s"].offsets == h.offsets(lambda stored: stored.organisation == 1)


async def test_a_fatal_answer_during_a_changes_grace_leaves_the_stream_in_error(
    h: Harness,
) -> None:
    gate = Block(then=FatalError("401 Unauthorized: bad key", 401))
    stream = await _sending(h, "s", gate)
    changed = stream_spec("s", version="old").model_copy(
        update={"organisation": h.state(stream).spec.organisation}
    )

    updating = await _under_way(h, stream, h.fanout.update(stream, lambda _: changed))
    gate.release.set()
    await asyncio.wait_for(updating, 10)

    saved = await h.saved(stream)
    assert (saved.status, saved.spec) == (StreamStatus.ERROR, changed)
    assert h.state(stream).status is StreamStatus.ERROR
    assert h.state(stream).error is not None
    assert stream not in h.fanout._workers  # not started again by the change


async def test_a_stable_batch_stopped_while_its_marker_is_written_is_not_sent(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destination with stable batches (S3) first stores the batch's end; a stop that comes
    meanwhile starts no send: the same batch goes when the stream runs again."""
    monkeypatch.setattr(FakeConnector, "stable_batches", True)
    marking, marked = asyncio.Event(), asyncio.Event()
    commit = h.log.commit_position

    async def held_marker(stream_id: int, position: Position) -> None:
        if position.inflight is not None:
            marking.set()
            await marked.wait()
        await commit(stream_id, position)

    monkeypatch.setattr(h.log, "commit_position", held_marker)
    (stream,) = await h.restore(("s", 1, {}))
    await h.append(usage=3, organisation=1)
    await asyncio.wait_for(marking.wait(), 10)

    pausing = await _under_way(h, stream, h.fanout.pause(stream))
    marked.set()
    await asyncio.wait_for(pausing, 10)

    assert h["s"].attempts == []
    saved = await h.saved(stream)
    assert (saved.status, saved.position.offset) == (StreamStatus.PAUSED, 0)
    assert saved.position.inflight == h.log.last_offset  # the batch is cut the same again
    await h.fanout.resume(stream)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert len(h["s"].attempts) == 1


async def test_a_change_the_store_refuses_leaves_the_stream_delivering_as_it_was(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    (stream,) = await h.restore(("s", 1, {}))
    before = h.state(stream).spec

    async def refused(stream_id: int, spec: StreamSpec) -> None:
        raise LogError("the disk is full")

    monkeypatch.setattr(h.log, "define_stream", refused)
    with pytest.raises(LogError):
        await h.fanout.update(stream, lambda _: stream_spec("s", version="old"))

    assert h.state(stream).spec == before
    assert h.state(stream).status is StreamStatus.RUNNING
    await h.append(usage=3, organisation=1)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)
    assert h["s"].offsets == h.offsets(lambda stored: stored.organisation == 1)


# -- operations that overlap on one stream: one after the other, none lost ------------------


@pytest.mark.usefixtures("long_grace")
async def test_a_resume_during_a_pauses_grace_comes_after_it(h: Harness) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    pausing = await _under_way(h, stream, h.fanout.pause(stream))

    resuming = asyncio.ensure_future(h.fanout.resume(stream))
    gate.release.set()
    await asyncio.wait_for(asyncio.gather(pausing, resuming), 10)

    assert h.state(stream).status is StreamStatus.RUNNING
    assert stream in h.fanout._workers
    await h.append(usage=2, organisation=1)
    await wait_for(lambda: h.state(stream).position.offset == h.log.last_offset)


@pytest.mark.usefixtures("long_grace")
async def test_two_changes_during_a_grace_are_both_kept(h: Harness) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    old = await _under_way(
        h,
        stream,
        h.fanout.update(
            stream, lambda spec: spec.model_copy(update={"format_version": Version.OLD})
        ),
    )
    renamed = asyncio.ensure_future(
        h.fanout.update(stream, lambda spec: spec.model_copy(update={"name": "renamed"}))
    )
    gate.release.set()
    await asyncio.wait_for(asyncio.gather(old, renamed), 10)

    for spec in (h.state(stream).spec, (await h.saved(stream)).spec):
        assert (spec.format_version, spec.name) == (Version.OLD, "renamed")


@pytest.mark.usefixtures("long_grace")
async def test_an_operation_waiting_on_a_deleted_stream_finds_it_gone(h: Harness) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    deleting = await _under_way(h, stream, h.fanout.delete(stream))

    again = asyncio.ensure_future(h.fanout.delete(stream))  # a client's retry
    pausing = asyncio.ensure_future(h.fanout.pause(stream))
    gate.release.set()
    await asyncio.wait_for(deleting, 10)

    for late in (again, pausing):
        with pytest.raises(StreamGone):
            await asyncio.wait_for(late, 10)
    assert h.fanout.get(stream) is None
    assert h.fanout._operations == {}


@pytest.mark.usefixtures("long_grace")
async def test_a_stream_deleted_elsewhere_during_a_grace_is_gone_for_the_operation(
    h: Harness,
) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    updating = await _under_way(h, stream, h.fanout.update(stream, lambda spec: spec))

    await h.log.delete_stream(stream)  # as another replica would
    await asyncio.wait_for(h.fanout.sync(), 10)

    with pytest.raises(StreamGone):
        await asyncio.wait_for(updating, 10)
    assert h.fanout.get(stream) is None
    assert stream not in h.fanout._workers
    assert h["s"].unclosed_senders == []


@pytest.mark.usefixtures("long_grace")
async def test_a_shutdown_during_a_changes_grace_leaves_no_worker_running(h: Harness) -> None:
    gate = Block()
    stream = await _sending(h, "s", gate)
    updating = await _under_way(h, stream, h.fanout.update(stream, lambda spec: spec))

    stopping = asyncio.ensure_future(h.fanout.stop(10.0))
    gate.release.set()
    await asyncio.wait_for(asyncio.gather(updating, stopping), 20)

    assert h.fanout._workers == {}
    assert h["s"].unclosed_senders == []
