"""The guarantees of ``streamer/log/base.py`` that both backends give, against each: SQLite in a
temporary directory and JetStream on the test's own ``nats-server``. JetStream's own promises
(a retried append is not stored twice, a second replica sees the first one's changes, NATS
away and back) follow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import nats
import pytest

from schemas import Kind
from streamer.callbacks import ApiCallbacks
from streamer.log.base import Entry, Log, LogError, Position, StreamError, StreamStatus
from streamer.log.base import Store as StoreProtocol
from streamer.log.jetstream import JetStreamLog
from streamer.log.kv import KvStore
from streamer.log.nats_connection import NatsOptions
from tests.e2e.harness import eventually
from tests.log.backends import BACKENDS, RETENTION_SECS, open_backend
from tests.log.test_sqlite import SPEC, entries
from tests.nats_server import NatsServer

Backend = tuple[Log, StoreProtocol, NatsServer | None]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


async def test_a_lane_holds_its_organisations_records_of_its_kinds_in_offset_order(
    backend: Backend,
) -> None:
    log, _, _ = backend
    first = await log.append(entries(3, "a", organisation=1))
    await log.append([Entry(Kind.EVENT, 1, 7, 1, b'{"e":1}'), *entries(2, "b", organisation=2)])
    last = await log.append(entries(2, "c", organisation=1))

    both = await log.read(1, (Kind.EVENT, Kind.USAGE), 0, 100)
    usage = await log.read(1, (Kind.USAGE,), 0, 100)
    events = await log.read(1, (Kind.EVENT,), 0, 100)

    assert first == 3
    assert last == log.last_offset == 8
    assert [row.offset for row in both] == [1, 2, 3, 4, 7, 8]
    assert [row.body for row in usage] == [
        b'{"a":0}',
        b'{"a":1}',
        b'{"a":2}',
        b'{"c":0}',
        b'{"c":1}',
    ]
    assert [tuple(row) for row in events] == [(4, Kind.EVENT, 1, 7, 1, b'{"e":1}')]
    assert [row.organisation for row in await log.read(2, (Kind.USAGE,), 0, 100)] == [2, 2]


async def test_reads_and_pending_count_from_a_position(backend: Backend) -> None:
    log, _, _ = backend
    await log.append(entries(10, organisation=1))
    await log.append(entries(5, organisation=2))

    assert [row.offset for row in await log.read(1, (Kind.USAGE,), 3, 4)] == [4, 5, 6, 7]
    assert await log.read(1, (Kind.USAGE,), 10, 4) == []
    assert await log.pending(1, (Kind.USAGE,), 3) == 7
    assert await log.pending(1, (Kind.EVENT,), 0) == 0
    assert await log.pending(2, (Kind.USAGE,), 12) == 3
    assert await log.bounds() == (0, 15)


async def test_an_empty_log_has_empty_bounds(backend: Backend) -> None:
    log, _, _ = backend
    assert await log.bounds() == (0, 0)
    assert await log.append([]) == 0
    assert await log.read(1, (Kind.USAGE,), 0, 10) == []


async def test_streams_round_trip(backend: Backend) -> None:
    _, store, _ = backend
    first = await store.create_stream(7, SPEC, offset=3)
    second = await store.create_stream(8, SPEC.model_copy(update={"name": "b"}), offset=0)
    assert second.id > first.id
    assert await store.streams() == [first, second]

    renamed = SPEC.model_copy(update={"name": "renamed"})
    error = StreamError(message="refused", http_status=401, at="2026-01-01T00:00:00Z")
    position = Position(9, 5, "2026-01-01T00:00:00Z", 401, 12)
    await store.define_stream(first.id, renamed)
    await store.set_status(first.id, StreamStatus.ERROR, error)
    await store.commit_position(first.id, position)

    (changed, _) = await store.streams()
    assert (changed.spec, changed.status, changed.error, changed.position) == (
        renamed,
        StreamStatus.ERROR,
        error,
        position,
    )
    await store.delete_stream(first.id)
    assert await store.streams() == [second]
    assert (await store.create_stream(9, SPEC, offset=0)).id > second.id


async def test_dead_letters_are_kept_requeued_and_dropped(backend: Backend) -> None:
    _, store, _ = backend
    stream = await store.create_stream(1, SPEC, offset=0)
    await store.add_dead_letters(stream.id, [(5, Kind.USAGE, b'{"a":5}', "refused")])
    await store.add_dead_letters(stream.id, [(3, Kind.EVENT, b'{"a":3}', "too big")])
    await store.requeue_dead_letters(stream.id)
    await store.add_dead_letters(stream.id, [(5, Kind.USAGE, b'{"a":5}', "refused again")])

    letters = await store.dead_letters(stream.id)
    queued = await store.dead_letters(stream.id, queued_only=True)

    assert sorted((d.offset, d.kind, d.body, d.reason, d.queued) for d in letters) == [
        (3, Kind.EVENT, b'{"a":3}', "too big", True),
        (5, Kind.USAGE, b'{"a":5}', "refused again", False),
    ]
    assert [d.offset for d in queued] == [3]
    assert await store.queued_replays() == {stream.id}
    assert await store.requeue_dead_letters(stream.id) == 1
    await store.drop_dead_letters([queued[0].id])
    assert [d.offset for d in await store.dead_letters(stream.id)] == [5]
    assert await store.queued_replays() == {stream.id}  # 5, queued again just above
    await store.drop_dead_letters([d.id for d in await store.dead_letters(stream.id)])
    assert await store.queued_replays() == set()
    await store.delete_stream(stream.id)
    assert await store.dead_letters(stream.id) == []


async def test_tokens_round_trip(backend: Backend) -> None:
    _, store, _ = backend
    admin = await store.add_token(b"d1", "admin", None, "bootstrap")
    org = await store.add_token(b"d2", "organisation", 5, "ci")

    token = await store.token(b"d1")
    assert token is not None
    assert token[:5] == (admin, b"d1", "admin", None, "bootstrap")
    assert await store.token(b"unknown") is None
    assert [(t.id, t.organisation) for t in await store.tokens()] == [(admin, None), (org, 5)]
    with pytest.raises(LogError):
        await store.add_token(b"d1", "admin", None, "again")
    assert await store.delete_token(admin) is True
    assert await store.delete_token(admin) is False
    assert [t.id for t in await store.tokens()] == [org]


async def test_api_callbacks_round_trip(backend: Backend) -> None:
    _, store, _ = backend
    first = await store.add_callback(1, "https://one.example/hook")
    second = await store.add_callback(2, "https://two.example/hook")

    assert second > first
    assert [tuple(c) for c in await store.callbacks()] == [
        (first, 1, "https://one.example/hook"),
        (second, 2, "https://two.example/hook"),
    ]
    await store.delete_callback(first)
    assert [c.id for c in await store.callbacks()] == [second]
    assert await store.add_callback(1, "https://three.example/hook") > second


async def test_callbacks_of_an_earlier_versions_file_move_into_the_store(
    backend: Backend, tmp_path: Path
) -> None:
    _, store, _ = backend
    legacy = tmp_path / "api_callbacks.json"
    legacy.write_bytes(
        b'[{"id": 1, "organisation": 4, "url": "https://a.example/"},'
        b' {"id": 2, "organisation": 5, "url": "https://b.example/"}]'
    )
    callbacks = ApiCallbacks(store)

    await callbacks.import_file(legacy)
    await callbacks.import_file(legacy)  # once only

    assert [tuple(c) for c in await callbacks.list()] == [
        (1, 4, "https://a.example/"),
        (2, 5, "https://b.example/"),
    ]
    assert not legacy.exists()
    assert (tmp_path / "api_callbacks.json.imported").exists()


# -- JetStream ------------------------------------------------------------------------------


@pytest.fixture
async def jetstream(tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend("nats", tmp_path) as opened:
        yield opened


async def test_a_retried_append_is_not_stored_twice(jetstream: Backend) -> None:
    log, _, _ = jetstream
    batch = entries(4, "retried")
    first = await log.append(batch)
    again = await log.append(batch)
    other = await log.append(entries(4, "other"))

    assert again == first == 4
    assert other == 8
    assert await log.pending(1, (Kind.USAGE,), 0) == 8


async def test_a_second_replica_sees_the_firsts_changes_and_appends(jetstream: Backend) -> None:
    log, store, server = jetstream
    assert server is not None
    options = NatsOptions(server.url)
    other_log = await JetStreamLog.open(options, RETENTION_SECS)
    other_store = await KvStore.open(options)
    arrivals: list[dict[int, int]] = []

    def arrived(counts: Mapping[int, int] | None) -> None:
        if counts is not None:
            arrivals.append(dict(counts))

    other_log.on_arrivals(arrived)
    try:
        stream = await store.create_stream(3, SPEC, offset=0)
        await store.set_status(stream.id, StreamStatus.PAUSED, None)
        await store.add_token(b"shared", "admin", None, "one")
        await log.append(entries(2, organisation=3))

        async def seen() -> bool:
            streams = await other_store.streams()
            return (
                [(s.id, s.status) for s in streams] == [(stream.id, StreamStatus.PAUSED)]
                and await other_store.token(b"shared") is not None
                and arrivals == [{3: 2}]
            )

        await eventually(seen)
        assert other_log.last_offset == 2
        assert [row.offset for row in await other_log.read(3, (Kind.USAGE,), 0, 10)] == [1, 2]
        await other_store.delete_stream(stream.id)
        await eventually(lambda: _no_streams(store))
    finally:
        await other_store.aclose()
        await other_log.aclose()


async def test_nats_away_fails_writes_and_nats_back_keeps_what_was_acknowledged(
    jetstream: Backend,
) -> None:
    """A write refused while NATS is away stays refused: it is not held back and sent once
    NATS is back (a pause answered 503 must not pause the stream later)."""
    log, store, server = jetstream
    assert server is not None
    assert isinstance(log, JetStreamLog)
    assert isinstance(store, KvStore)
    stream = await store.create_stream(1, SPEC, offset=0)
    await log.append(entries(3, "before"))

    server.kill()
    await eventually(lambda: not _connected(log) and not _connected(store))
    with pytest.raises(LogError):
        await log.append(entries(1, "while away"))
    with pytest.raises(LogError):
        await store.set_status(stream.id, StreamStatus.PAUSED, None)
    for refused in (log, store):  # no request was made: none waits for an answer
        assert not refused._client._resp_map
    server.start()

    async def appended() -> bool:
        try:
            await log.append(entries(1, "after"))
        except LogError:
            return False
        return True

    await eventually(appended)
    await eventually(lambda: _connected(store))
    await store.commit_position(stream.id, Position(4))  # after anything held back, in order
    bodies = [row.body for row in await log.read(1, (Kind.USAGE,), 0, 10)]
    assert bodies == [b'{"before":0}', b'{"before":1}', b'{"before":2}', b'{"after":0}']
    fresh = await KvStore.open(NatsOptions(server.url))
    try:
        (stored,) = await fresh.streams()
    finally:
        await fresh.aclose()
    assert (stored.status, stored.position) == (StreamStatus.PENDING, Position(4))


async def test_a_replica_sees_the_others_changes_again_once_nats_is_back(
    jetstream: Backend,
) -> None:
    """The store's watch of a bucket is made again after NATS restarted (nothing is held
    back while reconnecting, so it is the watch's own retry that brings it back)."""
    _, store, server = jetstream
    assert server is not None
    stream = await store.create_stream(1, SPEC, offset=0)
    server.kill()
    await eventually(lambda: not _connected(store))
    server.start()
    other = await KvStore.open(NatsOptions(server.url))
    try:
        await other.set_status(stream.id, StreamStatus.PAUSED, None)

        async def seen() -> bool:
            (mirrored,) = await store.streams()
            return mirrored.status is StreamStatus.PAUSED

        await eventually(seen, 60, what="the other replica's pause seen")
    finally:
        await other.aclose()


def _connected(backend: object) -> bool:
    client = backend._client  # type: ignore[attr-defined]
    return bool(client.is_connected)


async def _no_streams(store: StoreProtocol) -> bool:
    return not await store.streams()


@pytest.mark.nats
async def test_the_store_parses_a_definition_again_only_once_it_changed(
    nats_server: NatsServer,
) -> None:
    """The engine asks for every stream twice a second: an unchanged definition is not
    parsed again."""
    store = await KvStore.open(NatsOptions(nats_server.url))
    try:
        stream = await store.create_stream(1, SPEC, 0)
        (first,) = await store.streams()
        (again,) = await store.streams()
        assert again.spec is first.spec
        renamed = SPEC.model_copy(update={"name": "renamed"})
        await store.define_stream(stream.id, renamed)
        (changed,) = await store.streams()
        assert changed.spec == renamed
        assert changed.spec is not first.spec
    finally:
        await store.aclose()


@pytest.mark.nats
async def test_the_nats_url_may_name_several_servers(nats_server: NatsServer) -> None:
    """``STREAMER_NATS_URL`` takes a comma-separated list: one server away, another answers."""
    log = await JetStreamLog.open(
        NatsOptions(f"nats://127.0.0.1:9, {nats_server.url}"), RETENTION_SECS
    )
    try:
        assert await log.append(entries(2, "a")) == 2
    finally:
        await log.aclose()


async def test_a_replica_learns_of_records_whose_notice_it_missed(jetstream: Backend) -> None:
    """The notice of another replica's append is sent at most once: records stored without
    one (or whose notice was lost) still wake this replica's streams."""
    log, _, server = jetstream
    assert server is not None
    assert isinstance(log, JetStreamLog)
    woken: list[None] = []

    def arrived(counts: Mapping[int, int] | None) -> None:
        if counts is None:
            woken.append(None)

    log.on_arrivals(arrived)
    publisher = await nats.connect(server.url)
    try:
        ack = await publisher.jetstream().publish(
            f"streamer.records.1.{Kind.USAGE.value}._._", b"{}"
        )
        await eventually(lambda: bool(woken))
        assert log.last_offset == ack.seq
        assert [row.offset for row in await log.read(1, (Kind.USAGE,), 0, 10)] == [ack.seq]
    finally:
        await publisher.close()
