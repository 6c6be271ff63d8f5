"""The embedded backend: one SQLite database in WAL mode under the data directory, holding both
the record ``Log`` and the ``Store``.

The event loop never touches the disk. All writes go to one writer thread that owns the write
connection and commits whatever has queued up in one transaction (group commit): many ingest
requests share one fsync, and each request still gets its answer only after that commit. Every
job runs in its own savepoint, so one failing job does not undo the others. A committed group
reaches the event loop in one call: its changes to the lane index first, then its answers.
Reads of records older than what memory keeps, and of the store, run on a small pool of reader
threads with their own connections; WAL lets them read while the writer writes.

Records are stored as segments (``streamer.log.segments``): one row per append, whatever the
organisations it holds. A reader of one organisation finds its records through the lane index
in memory and reads the newest from memory, without reading anyone else's records.
"""

from __future__ import annotations

import asyncio
import fcntl
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from operator import attrgetter
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
from streamer.log.segments import Lane, Lanes, Plan, Segment, cold_rows
from streamer.spec import StreamSpec

__all__ = ["SqliteLog"]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
_offset = attrgetter("offset")

_LAYOUT = 3  # PRAGMA user_version of this layout
_PAGE_BYTES = 16384
_CHECKPOINT_BYTES = 4 << 20
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS segments (
    first INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    at REAL NOT NULL,
    organisations BLOB NOT NULL,
    kinds BLOB NOT NULL,
    event_types BLOB,
    alerts BLOB,
    ends BLOB NOT NULL,
    body BLOB NOT NULL
);
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
_STREAM_COLUMNS = (
    "s.id, s.organisation, s.spec, s.status, s.error, s.created_at, p.offset, p.delivered,"
    " p.last_delivery_at, p.last_result_code, p.inflight"
)


class SqliteLog:
    """The ``Log`` on SQLite. Open with ``await SqliteLog.open(data_dir)``."""

    def __init__(self, path: Path, sync: str, memory_bytes: int) -> None:
        self._path = path
        self._lock: IO[str] | None = None
        self._sync = sync
        self._jobs: queue.SimpleQueue[tuple[Job, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-reader")
        self._last_offset = 0  # committed and published: what readers can see
        self._lanes = Lanes(memory_bytes)  # the event loop's, like _last_offset
        self._cold: list[tuple[Lane, Plan, asyncio.Future[list[Row]]]] = []  # reads waiting
        self._cold_reader: asyncio.Future[None] | None = None
        self._next_offset = 1  # the writer thread's: what the next append gets
        self._staged: list[Callable[[], None]] = []  # the writer thread's: to publish on commit
        self._refusal: LogError | None = None  # once set (closed, or unusable), writes fail

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        sync: str = "full",
        *,
        exclusive: bool = False,
        memory_bytes: int = 256 * 2**20,
    ) -> SqliteLog:
        """Open (or create) the log in ``data_dir``. ``exclusive``: this process is the one
        that appends records (the service); a second such process on the same directory is
        refused with ``LogError`` (offsets are assigned in memory). Commands that only touch
        tokens or streams may open it beside the running service."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # destination secrets live in the database: owner-only (SQLite gives its -wal and
        # -shm files the database file's mode)
        (data_dir / "streamer.db").touch(mode=0o600, exist_ok=True)
        log = cls(data_dir / "streamer.db", sync, memory_bytes)
        if exclusive:
            log._lock = _lock(data_dir / "streamer.lock")
        log._writer.start()
        try:
            log._last_offset, log._lanes = await log._write(partial(_stored_lanes, memory_bytes))
        except BaseException:
            await log.aclose()
            raise
        log._next_offset = log._last_offset + 1
        return log

    # -- records -----------------------------------------------------------------------------

    async def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self._last_offset
        segment = Segment(entries)
        columns = segment.columns()

        def job(conn: sqlite3.Connection) -> int:
            first = self._next_offset
            conn.execute(
                "INSERT INTO segments (first, count, at, organisations, kinds, event_types,"
                " alerts, ends, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (first, segment.count, time.time(), *columns, segment.body),
            )
            last = first + segment.count - 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_offset'", (last,))
            segment.first = first
            self._staged.append(partial(self._lanes.add, segment))
            self._next_offset = last + 1
            return last

        return int(await self._write(job))

    def keep_warm_for(self, read_soon: Callable[[int], bool]) -> None:
        """Keep the newest records in memory only while ``read_soon(organisation)`` holds for
        one of an append's organisations (the fan-out: a delivering stream listens to it)."""
        self._lanes.read_soon = read_soon

    @property
    def memory_held(self) -> int:
        """About how many bytes of the newest records memory holds."""
        return self._lanes.warm_size

    async def read(
        self, organisation: int, kinds: Collection[Kind], after: int, limit: int
    ) -> list[Row]:
        # what each lane holds is taken at once, before any read from the database
        lanes = [(organisation, kind) for kind in kinds]
        found = [self._lanes.read(lane, after, limit) for lane in lanes]
        rows = [
            await self._cold_rows(lane, plan) + warm if plan else warm
            for lane, (plan, warm) in zip(lanes, found, strict=True)
        ]
        found_in = [lane_rows for lane_rows in rows if lane_rows]
        if len(found_in) <= 1:
            return found_in[0] if found_in else []
        return sorted(chain(*found_in), key=_offset)[:limit]  # sorted runs: one linear merge

    async def _cold_rows(self, lane: Lane, plan: Plan) -> list[Row]:
        """Rows older than what memory keeps. Reads that wait while one is under way go
        together, so streams that fell behind together read each segment once."""
        future: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        self._cold.append((lane, plan, future))
        if self._cold_reader is None:
            self._cold_reader = asyncio.ensure_future(self._read_cold())
        return await future

    async def _read_cold(self) -> None:
        try:
            while self._cold:
                reads, self._cold = self._cold, []
                try:
                    found = await self._read(
                        partial(cold_rows, reads=[(lane, plan) for lane, plan, _ in reads])
                    )
                except Exception as exc:  # every read of the group gets the reason
                    for _, _, future in reads:
                        _settle(future, None, exc)
                    continue
                for (_, _, future), rows in zip(reads, found, strict=True):
                    _settle(future, rows, None)
        finally:
            self._cold_reader = None

    async def pending(self, organisation: int, kinds: Collection[Kind], after: int) -> int:
        return sum(self._lanes.count_after((organisation, kind), after) for kind in kinds)

    async def bounds(self) -> tuple[int, int]:
        oldest, last = self._lanes.oldest(), self._last_offset
        return (last if oldest is None else oldest - 1), last

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
            self._staged.append(partial(self._lanes.trim, keep_from))
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

    async def queued_replays(self) -> set[int]:
        def job(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute("SELECT DISTINCT stream FROM dead_letters WHERE queued = 1")
            return {stream_id for (stream_id,) in rows}

        return await self._read(job)

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
        # A segment is hundreds of kilobytes: in pages of 16 KiB, not 4, appending one costs
        # 0.7-0.85 times the CPU, and an append of one record about a tenth more (BENCHMARKS.md,
        # "The log's page size"). Taken when the database is made (one made before keeps its
        # pages); the WAL is checkpointed at about 4 MiB, as with SQLite's defaults.
        conn.execute(f"PRAGMA page_size = {_PAGE_BYTES}")
        conn.execute("PRAGMA journal_mode = WAL")
        page_bytes = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_BYTES // page_bytes}")
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
        committed = self._next_offset - 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, future in group:
                results.append(self._run(conn, job, future))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._next_offset = committed + 1
            self._staged.clear()
            failure = _log_error(exc)
            results = [(future, None, failure) for _, future in group]
        staged, self._staged = self._staged, []
        last_offset = self._next_offset - 1
        group[0][1].get_loop().call_soon_threadsafe(self._publish, staged, last_offset, results)

    def _run(
        self, conn: sqlite3.Connection, job: Job, future: asyncio.Future[Any]
    ) -> tuple[asyncio.Future[Any], Any, BaseException | None]:
        """One job of a group, in a savepoint: its failure is its answer alone."""
        staged = len(self._staged)
        conn.execute("SAVEPOINT job")
        try:
            value = job(conn)
            conn.execute("RELEASE job")
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            del self._staged[staged:]
            return future, None, _log_error(exc) if isinstance(exc, sqlite3.Error) else exc
        return future, value, None

    def _publish(
        self,
        staged: list[Callable[[], None]],
        last_offset: int,
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]],
    ) -> None:
        """On the event loop (one wake-up per group): what a committed group changed in the
        lane index, then the answers of its jobs (readers see an append's records before it
        returns)."""
        for change in staged:
            change()
        self._last_offset = last_offset
        for future, value, error in results:
            _settle(future, value, error)


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


def _stored_lanes(memory_bytes: int, conn: sqlite3.Connection) -> tuple[int, Lanes]:
    """The last offset and the lane index of what the database holds."""
    last = conn.execute("SELECT value FROM meta WHERE key = 'last_offset'").fetchone()[0]
    lanes = Lanes(memory_bytes)
    for first, organisations, kinds in conn.execute(
        "SELECT first, organisations, kinds FROM segments ORDER BY first"
    ):
        lanes.add_stored(first, organisations, kinds)
    return int(last), lanes


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
