"""The SQLite log against a real database file: the guarantees of ``streamer/log/base.py``.

Where a test needs the writer thread at a known point (a group of jobs queued behind a job that
is still running), it parks the writer in a job of its own through the private ``_write``; the
test releases it once everything it wants in the next group has been queued.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import streamer.log.sqlite as sqlite_module
from schemas import Kind
from streamer.log.base import (
    Entry,
    LogError,
    Position,
    Row,
    Stream,
    StreamError,
    StreamStatus,
    TokenRow,
)
from streamer.log.sqlite import SqliteLog
from streamer.spec import StreamSpec

USAGE = (Kind.USAGE,)
EVENTS = (Kind.EVENT,)
BOTH = (Kind.EVENT, Kind.USAGE)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


SPEC = StreamSpec.model_validate(
    {
        "name": "a",
        "data_stream_type": {"id": 3},
        "destination": {
            "connection_type": "RestAPI",
            "credentials": {"url": "https://receiver.example/hook", "headers": ["A:b"]},
        },
    }
)


def entries(count: int, tag: str = "x", organisation: int = 1) -> list[Entry]:
    """``count`` usage entries whose bodies say which append and position they are."""
    return [
        Entry(Kind.USAGE, organisation, None, None, f'{{"{tag}":{i}}}'.encode())
        for i in range(count)
    ]


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteLog]:
    log = await SqliteLog.open(tmp_path)
    yield log
    await log.aclose()


class ParkedWriter:
    """Holds the writer thread inside a job until ``release``; everything queued meanwhile
    is committed as the next group."""

    def __init__(self, log: SqliteLog) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.done = log._write(self._job)

    def _job(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.released.wait(10)

    async def __aenter__(self) -> ParkedWriter:
        assert await asyncio.to_thread(self.entered.wait, 10), "the writer never ran the job"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.released.set()
        await self.done


# -- records ---------------------------------------------------------------------------------


async def test_append_returns_the_last_offset_and_offsets_follow_on(log: SqliteLog) -> None:
    sizes = [1, 3, 5, 2]
    lasts = [await log.append(entries(n, f"a{j}")) for j, n in enumerate(sizes)]

    assert lasts == [1, 4, 9, 11]
    assert log.last_offset == 11
    rows = await log.read(1, USAGE, 0, 100)
    assert [row.offset for row in rows] == list(range(1, 12))
    assert [row.body for row in rows] == [
        e.body for j, n in enumerate(sizes) for e in entries(n, f"a{j}")
    ]


async def test_an_append_is_one_row_however_many_organisations_it_holds(log: SqliteLog) -> None:
    spread = [Entry(Kind.USAGE, 1 + i % 300, None, None, b'{"i":%d}' % i) for i in range(500)]

    await log.append(spread)

    count = await log._read(lambda conn: conn.execute("SELECT count(*) FROM segments").fetchone())
    assert count == (1,)
    assert [row.body for row in await log.read(7, USAGE, 0, 10)] == [
        entry.body for entry in spread if entry.organisation == 7
    ]


def pragmas(conn: sqlite3.Connection) -> tuple[int, int]:
    """A connection's page size, and the WAL's size at which it checkpoints."""
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    return page, conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] * page


async def test_a_new_log_has_large_pages_and_checkpoints_its_wal_at_about_4_mib(
    log: SqliteLog,
) -> None:
    assert await log._write(pragmas) == (16384, 4 << 20)
    assert await log._read(pragmas) == (16384, 4 << 20)


async def test_a_log_made_with_small_pages_keeps_them_and_checkpoints_at_about_4_mib(
    tmp_path: Path,
) -> None:
    made = sqlite3.connect(tmp_path / "streamer.db")
    made.execute("PRAGMA page_size = 4096")
    made.execute("PRAGMA journal_mode = WAL")
    made.close()
    log = await SqliteLog.open(tmp_path)
    try:
        assert await log._write(pragmas) == (4096, 4 << 20)
    finally:
        await log.aclose()


async def test_rows_keep_their_routing_facts(log: SqliteLog) -> None:
    stored = [
        Entry(Kind.EVENT, 7, 19, 1, b'{"e":1}'),
        Entry(Kind.EVENT, 7, 3, 0, b'{"e":2}'),
        Entry(Kind.USAGE, 7, None, None, b'{"u":1}'),
        Entry(Kind.EVENT, 7, 5, None, b'{"e":3}'),
    ]
    await log.append(stored)

    expected = [Row(i + 1, *entry) for i, entry in enumerate(stored)]
    assert await log.read(7, BOTH, 0, 10) == expected
    assert await log.read(7, EVENTS, 0, 10) == [r for r in expected if r.kind is Kind.EVENT]
    assert await log.read(7, USAGE, 0, 10) == [expected[2]]


def _mixed(index: int) -> Entry:
    """Entry ``index`` of a mix of three organisations and both kinds."""
    kind = Kind.EVENT if index % 5 < 3 else Kind.USAGE
    organisation = 1 + index % 3
    event_type = index if kind is Kind.EVENT else None
    return Entry(kind, organisation, event_type, None, b'{"i":%d}' % index)


@pytest.mark.parametrize("limit", [1, 4, 7, 1000])
@pytest.mark.parametrize("kinds", [USAGE, EVENTS, BOTH], ids=["usage", "events", "both"])
@pytest.mark.parametrize("held", ["in-memory", "in-the-database", "some-in-each"])
async def test_read_gives_one_organisations_records_of_its_kinds_in_offset_order(
    tmp_path: Path,
    kinds: tuple[Kind, ...],
    limit: int,
    held: str,
) -> None:
    """Records read from memory (the newest), from the database (after reopening, or older
    than what memory keeps), or both in one read, are the same records."""
    memory = 9000 if held == "some-in-each" else 2**20  # 9000: the newest 2 appends
    log = await SqliteLog.open(tmp_path, memory_bytes=memory)
    mixed = [_mixed(i) for i in range(150)]
    for start in range(0, 150, 25):  # appends mixing organisations and kinds
        await log.append(mixed[start : start + 25])
    if held == "in-the-database":
        await log.aclose()
        log = await SqliteLog.open(tmp_path)
    try:
        await _read_back_organisation_2(log, mixed, kinds, limit)
    finally:
        await log.aclose()


async def _read_back_organisation_2(
    log: SqliteLog, mixed: list[Entry], kinds: tuple[Kind, ...], limit: int
) -> None:
    expected = [
        Row(i + 1, *entry)
        for i, entry in enumerate(mixed)
        if entry.organisation == 2 and entry.kind in kinds
    ]

    read: list[Row] = []
    after = 0
    while batch := await log.read(2, kinds, after, limit):
        assert len(batch) <= limit
        read += batch
        after = batch[-1].offset

    assert read == expected
    assert await log.pending(2, kinds, 0) == len(expected)
    middle = expected[len(expected) // 2].offset
    assert await log.pending(2, kinds, middle) == sum(r.offset > middle for r in expected)


async def test_appends_no_delivering_stream_reads_are_not_kept_in_memory(
    tmp_path: Path,
) -> None:
    """A paused stream's backlog does not take memory: an append none of whose organisations a
    delivering stream reads lets go of what memory held (the newest appends are the ones kept),
    and every record still reads back, from the database."""
    log = await SqliteLog.open(tmp_path)
    listened = {1, 3}
    log.keep_warm_for(listened.__contains__)
    mixed = [_mixed(i) for i in range(150)]
    backlog = [Entry(Kind.USAGE, 2, None, None, b'{"b":%d}' % i) for i in range(25)]
    try:
        await log.append(mixed[:75])
        assert log.memory_held > 0
        await log.append(backlog)
        assert log.memory_held == 0
        await log.append(mixed[75:])
        assert log.memory_held > 0

        everything = mixed[:75] + backlog + mixed[75:]
        for organisation in (1, 2, 3):
            expected = [
                Row(i + 1, *entry)
                for i, entry in enumerate(everything)
                if entry.organisation == organisation
            ]
            assert await log.read(organisation, BOTH, 0, 1000) == expected
    finally:
        await log.aclose()


async def test_reads_from_the_database_at_once_each_get_their_own_records(
    tmp_path: Path,
) -> None:
    """Streams that fell behind together read together: each segment is read once for all of
    them, and each read gets exactly its lane's records."""
    log = await SqliteLog.open(tmp_path)
    mixed = [_mixed(i) for i in range(300)]
    for start in range(0, 300, 30):
        await log.append(mixed[start : start + 30])
    await log.aclose()
    log = await SqliteLog.open(tmp_path)
    try:
        reads = [
            (o, kinds, after)
            for o in (1, 2, 3)
            for kinds in (USAGE, EVENTS, BOTH)
            for after in (0, 150)
        ]

        found = await asyncio.gather(*(log.read(o, kinds, after, 40) for o, kinds, after in reads))

        for (organisation, kinds, after), rows in zip(reads, found, strict=True):
            expected = [
                Row(i + 1, *entry)
                for i, entry in enumerate(mixed)
                if entry.organisation == organisation and entry.kind in kinds and i + 1 > after
            ]
            assert rows == expected[:40]
    finally:
        await log.aclose()


async def test_an_empty_append_stores_nothing(log: SqliteLog) -> None:
    await log.append(entries(2))

    assert await log.append([]) == 2
    assert await log.append(entries(1)) == 3


async def test_an_append_that_could_not_be_read_back_is_refused(log: SqliteLog) -> None:
    await log.append(entries(1))
    pretty = Entry(Kind.USAGE, 1, None, None, b'{\n  "id": 1\n}')  # bytes with a raw newline

    with pytest.raises(LogError, match="newline"):
        await log.append([*entries(2, "ok"), pretty])

    assert await log.append(entries(1, "next")) == 2  # nothing of it was stored
    assert [row.body for row in await log.read(1, USAGE, 0, 10)] == [
        *(e.body for e in entries(1)),
        *(e.body for e in entries(1, "next")),
    ]


@pytest.mark.parametrize(
    ("after", "limit", "expected"),
    [
        (0, 100, list(range(1, 11))),
        (0, 3, [1, 2, 3]),
        (4, 3, [5, 6, 7]),
        (8, 5, [9, 10]),
        (2, 5, [3, 4, 5, 6, 7]),
        (5, 100, [6, 7, 8, 9, 10]),
        (10, 5, []),
        (0, 0, []),
    ],
)
async def test_read_returns_rows_after_an_offset_in_order_up_to_a_limit(
    log: SqliteLog, after: int, limit: int, expected: list[int]
) -> None:
    await log.append(entries(4, "a"))
    await log.append(entries(6, "b"))

    assert [row.offset for row in await log.read(1, USAGE, after, limit)] == expected


async def test_bounds_before_and_after_trim(log: SqliteLog) -> None:
    assert await log.bounds() == (0, 0)
    await log.append(entries(5))
    assert await log.bounds() == (0, 5)

    assert await log.trim(older_than_secs=0) == 5

    assert await log.bounds() == (5, 5)
    await log.append(entries(2))
    assert await log.bounds() == (5, 7)


async def test_trim_drops_what_is_older_and_keeps_what_is_younger(log: SqliteLog) -> None:
    await log.append(entries(3))
    await log.append(entries(2))

    assert await log.trim(older_than_secs=3600) == 0
    assert len(await log.read(1, USAGE, 0, 10)) == 5

    assert await log.trim(older_than_secs=0) == 5
    assert await log.read(1, USAGE, 0, 10) == []


async def test_trim_cuts_between_appends_by_their_age(
    log: SqliteLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(sqlite_module, "time", types.SimpleNamespace(time=lambda: now[0]))
    await log.append(entries(3, "old"))
    now[0] = 2000.0
    await log.append(entries(2, "young"))
    now[0] = 2500.0

    assert await log.trim(older_than_secs=1000) == 3  # cutoff 1500: only the first append
    assert [row.offset for row in await log.read(1, USAGE, 0, 10)] == [4, 5]
    assert await log.bounds() == (3, 5)
    assert await log.trim(older_than_secs=600) == 0  # cutoff 1900: the second one stays
    assert await log.trim(older_than_secs=400) == 2  # cutoff 2100: now it goes too
    assert await log.bounds() == (5, 5)


async def test_offsets_are_never_reused_after_trim_or_reopening(tmp_path: Path) -> None:
    log = await SqliteLog.open(tmp_path)
    assert await log.append(entries(4)) == 4
    await log.trim(older_than_secs=0)
    assert await log.append(entries(2)) == 6
    await log.trim(older_than_secs=0)  # the table is empty again
    await log.aclose()

    log = await SqliteLog.open(tmp_path)
    try:
        assert log.last_offset == 6
        assert await log.bounds() == (6, 6)
        assert await log.append(entries(1, "after")) == 7
        assert [row.offset for row in await log.read(1, USAGE, 0, 10)] == [7]
    finally:
        await log.aclose()


async def test_what_was_written_before_aclose_is_there_after_reopening(tmp_path: Path) -> None:
    log = await SqliteLog.open(tmp_path)
    await log.append(entries(3, "kept"))
    stream = await log.create_stream(5, SPEC, offset=2)
    await log.set_status(stream.id, StreamStatus.RUNNING, None)
    await log.commit_position(stream.id, Position(3, delivered=2))
    stream.status, stream.position = StreamStatus.RUNNING, Position(3, delivered=2)
    token_id = await log.add_token(b"digest", "admin", None, "boot")
    await log.aclose()

    log = await SqliteLog.open(tmp_path)
    try:
        assert [row.body for row in await log.read(1, USAGE, 0, 10)] == [
            e.body for e in entries(3, "kept")
        ]
        assert log.last_offset == 3
        assert await log.streams() == [stream]
        token = await log.token(b"digest")
        assert token is not None
        assert token.id == token_id
    finally:
        await log.aclose()


async def test_concurrent_appends_get_distinct_contiguous_ranges(log: SqliteLog) -> None:
    sizes = [1 + i % 5 for i in range(300)]  # more than one group of 256 jobs

    lasts = await asyncio.gather(*(log.append(entries(n, f"t{i}")) for i, n in enumerate(sizes)))

    pairs = enumerate(zip(lasts, sizes, strict=True))
    ranges = sorted((last - n + 1, last, i) for i, (last, n) in pairs)
    assert ranges[0][0] == 1
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in itertools.pairwise(ranges))
    assert ranges[-1][1] == sum(sizes) == log.last_offset
    rows = await log.read(1, USAGE, 0, sum(sizes) + 10)
    assert len(rows) == sum(sizes)
    for first, last, i in ranges:
        assert [row.body for row in rows[first - 1 : last]] == [
            e.body for e in entries(sizes[i], f"t{i}")
        ]


def _raising(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES ('junk', 1)")
    raise ValueError("this job fails")


def _violating(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES ('junk', 1)")
    conn.execute("INSERT INTO meta (key, value) VALUES ('last_offset', 99)")  # a duplicate key


@pytest.mark.parametrize(
    ("failing", "error"),
    [(_raising, ValueError), (_violating, LogError)],
    ids=["raises", "violates-a-constraint"],
)
async def test_a_failing_job_does_not_lose_the_other_jobs_of_its_group(
    log: SqliteLog, failing: Callable[[sqlite3.Connection], None], error: type[Exception]
) -> None:
    await log.append(entries(2, "before"))

    async with ParkedWriter(log):  # queue, in this order, behind the parked job:
        first = asyncio.ensure_future(log.append(entries(3, "first")))
        await wait_for(lambda: log._jobs.qsize() == 1)
        failed = log._write(failing)
        second = asyncio.ensure_future(log.append(entries(2, "second")))
        await wait_for(lambda: log._jobs.qsize() == 3)
        assert log.last_offset == 2

    assert await first == 5
    with pytest.raises(error):
        await failed
    assert await second == 7
    assert log.last_offset == 7
    bodies = [row.body for row in await log.read(1, USAGE, 2, 10)]
    assert bodies == [e.body for e in [*entries(3, "first"), *entries(2, "second")]]
    meta = await log._write(lambda c: c.execute("SELECT key, value FROM meta").fetchall())
    assert meta == [("last_offset", 7)]  # the failed job's own write was undone
    assert await log.append(entries(1)) == 8


async def test_last_offset_moves_only_after_commit(log: SqliteLog) -> None:
    await log.append(entries(1))
    inside = threading.Event()
    leave = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:  # runs after the append, in the same group
        inside.set()
        leave.wait(10)

    async with ParkedWriter(log):
        appended = asyncio.ensure_future(log.append(entries(4)))
        await wait_for(lambda: log._jobs.qsize() == 1)
        held = log._write(hold)
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        # the append has run, its transaction is open: nothing of it is visible yet
        assert log.last_offset == 1
        assert [row.offset for row in await log.read(1, USAGE, 0, 10)] == [1]
        assert await log.bounds() == (0, 1)
        assert not appended.done()
    finally:
        leave.set()
    await held
    assert await appended == 5
    assert log.last_offset == 5
    assert len(await log.read(1, USAGE, 0, 10)) == 5


async def test_a_file_that_is_not_a_database_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "streamer.db").write_bytes(b"not a database" * 1000)

    with pytest.raises(LogError, match="not a database"):
        await asyncio.wait_for(SqliteLog.open(tmp_path), 10)


@pytest.mark.parametrize(
    "write",
    [
        lambda log: log.append(entries(1)),
        lambda log: log.create_stream(1, SPEC, 0),
        lambda log: log.add_token(b"d", "admin", None, "n"),
    ],
    ids=["append", "create_stream", "add_token"],
)
async def test_writes_after_aclose_fail_instead_of_hanging(
    tmp_path: Path, write: Callable[[SqliteLog], Awaitable[Any]]
) -> None:
    log = await SqliteLog.open(tmp_path)
    await log.aclose()

    with pytest.raises(LogError, match="closed"):
        await asyncio.wait_for(write(log), 10)


# -- streams and tokens ----------------------------------------------------------------------


async def test_streams_round_trip(log: SqliteLog) -> None:
    first = await log.create_stream(7, SPEC, offset=3)
    second = await log.create_stream(8, SPEC.model_copy(update={"name": "b"}), offset=0)

    assert (first.organisation, first.spec, first.status, first.error) == (
        7,
        SPEC,
        StreamStatus.PENDING,
        None,
    )
    assert first.position == Position(3)
    assert TIMESTAMP.fullmatch(first.created_at)
    assert second.id > first.id
    assert await log.streams() == [first, second]

    renamed = SPEC.model_copy(update={"name": "renamed"})
    error = StreamError(message="refused", http_status=401, at="2026-01-01T00:00:00Z")
    position = Position(9, 5, "2026-01-01T00:00:00Z", 401, 12)
    await log.define_stream(first.id, renamed)
    await log.set_status(first.id, StreamStatus.ERROR, error)
    await log.commit_position(first.id, position)
    changed = Stream(first.id, 7, renamed, StreamStatus.ERROR, error, first.created_at, position)
    assert await log.streams() == [changed, second]

    await log.set_status(first.id, StreamStatus.RUNNING, None)
    assert (await log.streams())[0].error is None

    await log.delete_stream(first.id)
    assert await log.streams() == [second]
    third = await log.create_stream(9, SPEC, offset=0)
    assert third.id > second.id  # ids are not reused either


async def test_a_position_commit_leaves_the_definition_and_status_alone(log: SqliteLog) -> None:
    """The engine writes a stream's definition and status, its worker its position: neither
    write can undo the other, in whatever order they land."""
    stream = await log.create_stream(7, SPEC, offset=0)
    renamed = SPEC.model_copy(update={"name": "renamed"})

    await asyncio.gather(
        log.define_stream(stream.id, renamed),
        log.commit_position(stream.id, Position(5, delivered=5)),
        log.set_status(stream.id, StreamStatus.PAUSED, None),
    )

    (stored,) = await log.streams()
    assert (stored.spec, stored.status, stored.position) == (
        renamed,
        StreamStatus.PAUSED,
        Position(5, delivered=5),
    )


async def test_a_database_of_an_older_layout_is_refused(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "streamer.db")
    old.execute("CREATE TABLE segments (first INTEGER PRIMARY KEY, routing BLOB)")
    old.close()

    with pytest.raises(LogError, match="layout 0"):
        await asyncio.wait_for(SqliteLog.open(tmp_path), 10)


async def test_tokens_round_trip(log: SqliteLog) -> None:
    admin = await log.add_token(b"d1", "admin", None, "bootstrap")
    org = await log.add_token(b"d2", "organisation", 5, "ci")

    token = await log.token(b"d1")
    assert token is not None
    assert token[:5] == (admin, b"d1", "admin", None, "bootstrap")
    assert TIMESTAMP.fullmatch(token.created_at)
    assert await log.token(b"unknown") is None
    assert [(t.id, t.organisation) for t in await log.tokens()] == [(admin, None), (org, 5)]

    with pytest.raises(LogError):
        await log.add_token(b"d1", "admin", None, "again")
    assert len(await log.tokens()) == 2

    assert await log.delete_token(admin) is True
    assert await log.delete_token(admin) is False
    assert await log.token(b"d1") is None
    assert await log.tokens() == [await log.token(b"d2")]
    assert all(isinstance(t, TokenRow) for t in await log.tokens())


# -- a crash ---------------------------------------------------------------------------------

_WRITER = r"""
import asyncio, sys
from pathlib import Path
from schemas import Kind
from streamer.log.base import Entry
from streamer.log.sqlite import SqliteLog

async def writer(log, task):
    n = 0
    while True:
        size = 1 + n % 4
        tag = f"{task}-{n}"
        entries = [Entry(Kind.USAGE, 1, None, None, f"{tag}-{i}".encode()) for i in range(size)]
        last = await log.append(entries)
        print(last, size, tag, flush=True)
        n += 1

async def main():
    log = await SqliteLog.open(Path(sys.argv[1]))
    await asyncio.gather(*(writer(log, task) for task in range(4)))

asyncio.run(main())
"""


async def test_every_acknowledged_append_survives_a_kill(tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    lines: list[bytes] = []
    try:
        while len(lines) < 200:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            if not line:
                stderr = await child.stderr.read()
                pytest.fail(f"the writer died early: {stderr.decode()}")
            lines.append(line)
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        rest = await child.stdout.read()
        await child.wait()
    assert child.returncode == -9
    lines += rest.splitlines(keepends=True)
    acks = [line.split() for line in lines if line.endswith(b"\n")]  # a torn last line: no ack

    log = await SqliteLog.open(tmp_path)
    try:
        oldest, newest = await log.bounds()
        rows = await log.read(1, USAGE, 0, newest + 10)
        assert oldest == 0
        assert [row.offset for row in rows] == list(range(1, newest + 1))
        assert newest >= max(int(last) for last, _, _ in acks)
        for last, size, tag in acks:
            first = int(last) - int(size) + 1
            assert [row.body for row in rows[first - 1 : int(last)]] == [
                b"%s-%d" % (tag, i) for i in range(int(size))
            ]
        assert await log.append(entries(1)) == newest + 1
    finally:
        await log.aclose()
