"""The embedded backend: one SQLite database in WAL mode under the data directory, holding both
the record ``Log`` and the ``Store``.

The event loop never touches the disk. All writes go to one writer thread that owns the write
connection and commits whatever has queued up in one transaction (group commit): many ingest
requests share one fsync, and each request still gets its answer only after that commit. Every
job runs in its own savepoint, so one failing job does not undo the others. Reads run on a
small pool of reader threads with their own connections; WAL lets them read while the writer
writes.

Records are stored as segments: one row per (append, organisation, kind) holding the canonical
bytes of those records joined by newlines (canonical JSON holds no raw newline), their offsets
and, for events, their event types and alert flags. An ingest request of 500 records of one
organisation costs one row, and a reader of one organisation finds its segments through the
index on (organisation, kind, last offset) without reading anyone else's records.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import heapq
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import islice, repeat
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from schemas import Kind
from streamer.log.base import (
    CallbackRow,
    DeadLetter,
    Entry,
    LogError,
    LogFullError,
    Position,
    Row,
    Stream,
    StreamError,
    StreamStatus,
    TokenRow,
)
from streamer.spec import StreamSpec

__all__ = ["SqliteLog"]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

_LAYOUT = 2  # PRAGMA user_version of this layout
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    organisation INTEGER NOT NULL,
    kind TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    count INTEGER NOT NULL,
    at REAL NOT NULL,
    offsets BLOB,
    routing BLOB,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_by_lane ON segments (organisation, kind, last);
CREATE INDEX IF NOT EXISTS segments_by_first ON segments (first);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation INTEGER NOT NULL,
    spec BLOB NOT NULL,
    status INTEGER NOT NULL,
    error BLOB,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    stream INTEGER PRIMARY KEY,
    offset INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    last_delivery_at TEXT,
    last_result_code INTEGER,
    inflight INTEGER
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    organisation INTEGER,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation INTEGER NOT NULL,
    url TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_stream ON dead_letters (stream, queued, id);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_once ON dead_letters (stream, offset);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_offset', 0);
PRAGMA user_version = {_LAYOUT};
"""
_LANE = (
    "SELECT first, last, offsets, routing, body FROM segments"
    " WHERE organisation = ? AND kind = ? AND last > ? ORDER BY last"
)
_STREAM_COLUMNS = (
    "s.id, s.organisation, s.spec, s.status, s.error, s.created_at, p.offset, p.delivered,"
    " p.last_delivery_at, p.last_result_code, p.inflight"
)


class SqliteLog:
    """The ``Log`` on SQLite. Open with ``await SqliteLog.open(data_dir)``."""

    def __init__(self, path: Path, sync: str) -> None:
        self._path = path
        self._lock: IO[str] | None = None
        self._sync = sync
        self._jobs: queue.SimpleQueue[tuple[Job, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-reader")
        self._last_offset = 0  # committed: what readers can see
        self._next_offset = 1  # the writer thread's: what the next append gets
        self._refusal: LogError | None = None  # once set (closed, or unusable), writes fail

    @classmethod
    async def open(
        cls, data_dir: Path, sync: str = "full", *, exclusive: bool = False
    ) -> SqliteLog:
        """Open (or create) the log in ``data_dir``. ``exclusive``: this process is the one
        that appends records (the service); a second such process on the same directory is
        refused with ``LogError`` (offsets are assigned in memory). Commands that only touch
        tokens or streams may open it beside the running service."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # destination secrets live in the database: owner-only (SQLite gives its -wal and
        # -shm files the database file's mode)
        (data_dir / "streamer.db").touch(mode=0o600, exist_ok=True)
        log = cls(data_dir / "streamer.db", sync)
        if exclusive:
            log._lock = _lock(data_dir / "streamer.lock")
        log._writer.start()
        try:
            log._last_offset = await log._write(_stored_last_offset)
        except BaseException:
            await log.aclose()
            raise
        log._next_offset = log._last_offset + 1
        return log

    # -- records -----------------------------------------------------------------------------

    async def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self._last_offset
        lanes: defaultdict[tuple[int, Kind], list[int]] = defaultdict(list)
        for index, entry in enumerate(entries):
            lanes[entry.organisation, entry.kind].append(index)
        segments = [
            _segment(organisation, kind, entries, indices)
            for (organisation, kind), indices in lanes.items()
        ]

        def job(conn: sqlite3.Connection) -> int:
            first = self._next_offset
            at = time.time()
            conn.executemany(
                "INSERT INTO segments (organisation, kind, first, last, count, at, offsets,"
                " routing, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [segment.row(first, at) for segment in segments],
            )
            last = first + len(entries) - 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_offset'", (last,))
            self._next_offset = last + 1
            return last

        return int(await self._write(job))

    async def read(
        self, organisation: int, kinds: Collection[Kind], after: int, limit: int
    ) -> list[Row]:
        def job(conn: sqlite3.Connection) -> list[Row]:
            lanes = [_lane_rows(conn, organisation, kind, after) for kind in kinds]
            rows = lanes[0] if len(lanes) == 1 else heapq.merge(*lanes, key=_offset)
            return list(islice(rows, limit))

        return await self._read(job)

    async def pending(self, organisation: int, kinds: Collection[Kind], after: int) -> int:
        lane = _lane(kinds)

        def job(conn: sqlite3.Connection) -> int:
            whole = conn.execute(
                "SELECT coalesce(sum(count), 0) FROM segments"
                f" WHERE organisation = ? AND kind IN ({lane}) AND first > ?",
                (organisation, after),
            ).fetchone()[0]
            split = conn.execute(
                "SELECT first, last, offsets FROM segments"
                f" WHERE organisation = ? AND kind IN ({lane}) AND last > ? AND first <= ?",
                (organisation, after, after),
            )
            for first, last, offsets in split:
                whole += sum(1 for offset in _offsets(first, last, offsets) if offset > after)
            return int(whole)

        return await self._read(job)

    async def bounds(self) -> tuple[int, int]:
        def job(conn: sqlite3.Connection) -> tuple[int, int]:
            oldest = conn.execute("SELECT min(first) FROM segments").fetchone()[0]
            last = conn.execute("SELECT value FROM meta WHERE key = 'last_offset'").fetchone()[0]
            return (last if oldest is None else oldest - 1), last

        return await self._read(job)

    @property
    def last_offset(self) -> int:
        """The newest committed offset: every record up to it can be read."""
        return self._last_offset

    async def trim(self, older_than_secs: float) -> int:
        def job(conn: sqlite3.Connection) -> int:
            cutoff = time.time() - older_than_secs
            row = conn.execute(
                "SELECT min(first) FROM segments WHERE at >= ?", (cutoff,)
            ).fetchone()
            keep_from = row[0] if row[0] is not None else self._next_offset
            dropped = conn.execute(
                "SELECT coalesce(sum(count), 0) FROM segments WHERE first < ?", (keep_from,)
            ).fetchone()[0]
            conn.execute("DELETE FROM segments WHERE first < ?", (keep_from,))
            return int(dropped)

        return int(await self._write(job))

    # -- streams -------------------------------------------------------------------------------

    async def create_stream(self, organisation: int, spec: StreamSpec, offset: int) -> Stream:
        created_at = _now()
        status = StreamStatus.PENDING

        def job(conn: sqlite3.Connection) -> int:
            created = conn.execute(
                "INSERT INTO streams (organisation, spec, status, created_at) VALUES (?, ?, ?, ?)",
                (organisation, spec.model_dump_json(), int(status), created_at),
            )
            stream_id = int(created.lastrowid or 0)
            conn.execute(
                "INSERT INTO positions (stream, offset, delivered) VALUES (?, ?, 0)",
                (stream_id, offset),
            )
            return stream_id

        stream_id = int(await self._write(job))
        return Stream(stream_id, organisation, spec, status, None, created_at, Position(offset))

    async def streams(self) -> list[Stream]:
        def job(conn: sqlite3.Connection) -> list[Stream]:
            rows = conn.execute(
                f"SELECT {_STREAM_COLUMNS} FROM streams s JOIN positions p ON p.stream = s.id"
                " ORDER BY s.id"
            )
            return [_stream(row) for row in rows]

        return await self._read(job)

    async def define_stream(self, stream_id: int, spec: StreamSpec) -> None:
        stored = spec.model_dump_json()
        await self._write(
            lambda conn: conn.execute(
                "UPDATE streams SET spec = ? WHERE id = ?", (stored, stream_id)
            )
        )

    async def set_status(
        self, stream_id: int, status: StreamStatus, error: StreamError | None
    ) -> None:
        stored = None if error is None else orjson.dumps(error)
        await self._write(
            lambda conn: conn.execute(
                "UPDATE streams SET status = ?, error = ? WHERE id = ?",
                (int(status), stored, stream_id),
            )
        )

    async def commit_position(self, stream_id: int, position: Position) -> None:
        values = (
            position.offset,
            position.delivered,
            position.last_delivery_at,
            position.last_result_code,
            position.inflight,
            stream_id,
        )
        await self._write(
            lambda conn: conn.execute(
                "UPDATE positions SET offset = ?, delivered = ?, last_delivery_at = ?,"
                " last_result_code = ?, inflight = ? WHERE stream = ?",
                values,
            )
        )

    async def delete_stream(self, stream_id: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM streams WHERE id = ?", (stream_id,))
            conn.execute("DELETE FROM positions WHERE stream = ?", (stream_id,))
            conn.execute("DELETE FROM dead_letters WHERE stream = ?", (stream_id,))

        await self._write(job)

    # -- dead letters --------------------------------------------------------------------------

    async def add_dead_letters(
        self, stream_id: int, letters: Sequence[tuple[int, Kind, bytes, str]]
    ) -> None:
        at = _now()
        rows = [
            (stream_id, offset, kind, body, reason, at) for offset, kind, body, reason in letters
        ]
        await self._write(
            lambda conn: conn.executemany(
                "INSERT INTO dead_letters (stream, offset, kind, body, reason, at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stream, offset) DO UPDATE"
                " SET reason = excluded.reason, at = excluded.at, queued = 0",
                rows,
            )
        )

    async def dead_letters(
        self, stream_id: int, *, queued_only: bool = False, limit: int = 1000
    ) -> list[DeadLetter]:
        def job(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT id, offset, kind, body, reason, at, queued FROM dead_letters"
                " WHERE stream = ? AND queued >= ? ORDER BY id LIMIT ?",
                (stream_id, int(queued_only), limit),
            )
            return [
                DeadLetter(ident, offset, Kind(kind), body, reason, at, bool(queued))
                for ident, offset, kind, body, reason, at, queued in rows
            ]

        return await self._read(job)

    async def requeue_dead_letters(self, stream_id: int) -> int:
        requeued = await self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE dead_letters SET queued = 1 WHERE stream = ? AND queued = 0",
                    (stream_id,),
                ).rowcount
            )
        )
        return int(requeued)

    async def drop_dead_letters(self, ids: Sequence[int]) -> None:
        await self._write(
            lambda conn: conn.executemany(
                "DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids]
            )
        )

    # -- tokens --------------------------------------------------------------------------------

    async def add_token(self, digest: bytes, role: str, organisation: int | None, name: str) -> int:
        def job(conn: sqlite3.Connection) -> int:
            added = conn.execute(
                "INSERT INTO tokens (digest, role, organisation, name, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (digest, role, organisation, name, _now()),
            )
            return int(added.lastrowid or 0)

        return int(await self._write(job))

    async def token(self, digest: bytes) -> TokenRow | None:
        def job(conn: sqlite3.Connection) -> TokenRow | None:
            row = conn.execute(
                "SELECT id, digest, role, organisation, name, created_at FROM tokens"
                " WHERE digest = ?",
                (digest,),
            ).fetchone()
            return None if row is None else TokenRow(*row)

        return await self._read(job)

    async def tokens(self) -> list[TokenRow]:
        def job(conn: sqlite3.Connection) -> list[TokenRow]:
            rows = conn.execute(
                "SELECT id, digest, role, organisation, name, created_at FROM tokens ORDER BY id"
            )
            return [TokenRow(*row) for row in rows]

        return await self._read(job)

    async def delete_token(self, token_id: int) -> bool:
        deleted = await self._write(
            lambda conn: conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount
        )
        return bool(deleted)

    # -- legacy API callbacks ------------------------------------------------------------------

    async def add_callback(self, organisation: int, url: str) -> int:
        def job(conn: sqlite3.Connection) -> int:
            added = conn.execute(
                "INSERT INTO api_callbacks (organisation, url) VALUES (?, ?)", (organisation, url)
            )
            return int(added.lastrowid or 0)

        return int(await self._write(job))

    async def callbacks(self) -> list[CallbackRow]:
        def job(conn: sqlite3.Connection) -> list[CallbackRow]:
            rows = conn.execute("SELECT id, organisation, url FROM api_callbacks ORDER BY id")
            return [CallbackRow(*row) for row in rows]

        return await self._read(job)

    async def delete_callback(self, callback_id: int) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM api_callbacks WHERE id = ?", (callback_id,))
        )

    async def aclose(self) -> None:
        self._refusal = self._refusal or LogError("the log is closed")
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        self._readers.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock

    # -- threads -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._sync.upper()}")
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    def _write(self, job: Job) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._refusal is not None:
            future.set_exception(LogError(*self._refusal.args))
        else:
            self._jobs.put((job, future))
        return future

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connect()
            try:
                return job(conn)
            except sqlite3.Error as exc:
                raise LogError(f"reading the log failed: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def _write_loop(self) -> None:
        try:
            conn = self._connect()
            _create(conn)
        except sqlite3.Error as exc:  # not a database, unreadable: every write gets the reason
            self._refusal = LogError(f"cannot open the log at {self._path}: {exc}")
            while (queued := self._jobs.get()) is not None:
                _, future = queued
                future.get_loop().call_soon_threadsafe(_settle, future, None, self._refusal)
            return
        while True:
            first = self._jobs.get()
            if first is None:
                break
            group = [first]
            while len(group) < 256:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)
                    break
                group.append(job)
            self._commit(conn, group)
        conn.close()

    def _commit(
        self, conn: sqlite3.Connection, group: list[tuple[Job, asyncio.Future[Any]]]
    ) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, future in group:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((future, job(conn), None))
                    conn.execute("RELEASE job")
                except Exception as exc:  # one job's failure is that job's answer
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    failure = _log_error(exc) if isinstance(exc, sqlite3.Error) else exc
                    results.append((future, None, failure))
            conn.execute("COMMIT")
            self._last_offset = self._next_offset - 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._next_offset = self._last_offset + 1
            failure = _log_error(exc)
            results = [(future, None, failure) for _, future in group]
        for future, value, error in results:
            future.get_loop().call_soon_threadsafe(_settle, future, value, error)


def _create(conn: sqlite3.Connection) -> None:
    """Create the tables, or check that the existing ones have this layout."""
    layout = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    if tables and layout != _LAYOUT:
        raise sqlite3.DatabaseError(
            f"it has layout {layout} and this version reads layout {_LAYOUT};"
            " start with an empty data directory"
        )
    conn.executescript(_SCHEMA)


def _stored_last_offset(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'last_offset'").fetchone()[0])


_new_tuple = tuple.__new__


def _lock(path: Path) -> IO[str]:
    """Hold an exclusive lock on ``path`` for as long as the returned file stays open (the
    operating system drops it when the process ends, however it ends)."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LogError(
            f"{path.parent} is in use by another streamer service; "
            "each service needs a data directory of its own"
        ) from None
    return handle


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _log_error(exc: sqlite3.Error) -> LogError:
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return LogFullError(f"the log is full: {exc}")
    return LogError(f"writing the log failed: {exc}")


def _stream(row: tuple[Any, ...]) -> Stream:
    ident, org, spec, status, error, created, offset, delivered, last_at, code, inflight = row
    return Stream(
        id=ident,
        organisation=org,
        spec=StreamSpec.model_validate_json(spec),
        status=StreamStatus(status),
        error=None if error is None else orjson.loads(error),
        created_at=created,
        position=Position(offset, delivered, last_at, code, inflight),
    )


class _Segment:
    """The records of one organisation and kind in one append, ready to be stored once the
    offsets of the append are known."""

    __slots__ = ("body", "count", "indices", "kind", "organisation", "routing")

    def __init__(
        self, organisation: int, kind: Kind, indices: list[int], routing: bytes | None, body: bytes
    ) -> None:
        self.organisation = organisation
        self.kind = kind
        self.indices = indices  # positions in the append
        self.count = len(indices)
        self.routing = routing
        self.body = body

    def row(self, first: int, at: float) -> tuple[Any, ...]:
        start, end = first + self.indices[0], first + self.indices[-1]
        contiguous = end - start + 1 == self.count
        offsets = None if contiguous else orjson.dumps([first + i for i in self.indices])
        return (
            self.organisation,
            self.kind.value,
            start,
            end,
            self.count,
            at,
            offsets,
            self.routing,
            self.body,
        )


def _segment(
    organisation: int, kind: Kind, entries: Sequence[Entry], indices: list[int]
) -> _Segment:
    bodies = [entries[i].body for i in indices]
    body = b"\n".join(bodies)
    if body.count(b"\n") != len(bodies) - 1:  # it would split into more records on read
        raise LogError("a record's bytes hold a raw newline: the log takes canonical JSON")
    routing = None
    if kind is Kind.EVENT:
        routing = orjson.dumps([(entries[i].event_type, entries[i].alert) for i in indices])
    return _Segment(organisation, kind, indices, routing, body)


def _lane(kinds: Collection[Kind]) -> str:
    """The SQL list of ``kinds`` (members of a closed enum, so safe to inline)."""
    return ", ".join(f"'{kind.value}'" for kind in kinds)


def _lane_rows(
    conn: sqlite3.Connection, organisation: int, kind: Kind, after: int
) -> Iterator[Row]:
    """The lane's rows after ``after`` in offset order, read a segment at a time as they are
    taken (the segments come in index order: no sort, so no copy of their bodies)."""
    segments = conn.execute(_LANE, (organisation, kind.value, after))
    for first, last, offsets, routing, body in segments:
        yield from _rows(kind, organisation, first, last, offsets, routing, body, after)


def _offsets(first: int, last: int, offsets: bytes | None) -> list[int]:
    return list(range(first, last + 1)) if offsets is None else orjson.loads(offsets)


def _rows(
    kind: Kind,
    organisation: int,
    first: int,
    last: int,
    offsets: bytes | None,
    routing: bytes | None,
    body: bytes,
    after: int,
) -> list[Row]:
    """The segment's rows after offset ``after``, built column-wise so the per-record work
    stays in C: this is the delivery hot path."""
    numbers = _offsets(first, last, offsets)
    skip = bisect.bisect_right(numbers, after)
    records = body.split(b"\n")[skip:]
    numbers = numbers[skip:]
    if routing is None:
        event_types: Iterable[int | None] = repeat(None)
        alerts: Iterable[int | None] = repeat(None)
    else:
        event_types, alerts = (
            zip(*orjson.loads(routing)[skip:], strict=True) if records else ((), ())
        )
    columns = zip(numbers, repeat(kind), repeat(organisation), event_types, alerts, records)
    return list(map(_new_tuple, repeat(Row), columns))


def _offset(row: Row) -> int:
    return row.offset


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
