"""Both backends of ``streamer/log/base.py``, for tests that run against each: SQLite in a
temporary directory, JetStream on the test's own ``nats-server``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest

from streamer.log.base import Log, Store
from streamer.log.jetstream import JetStreamLog
from streamer.log.kv import KvStore
from streamer.log.nats_connection import NatsOptions
from streamer.log.sqlite import SqliteLog
from tests.nats_server import NatsServer

__all__ = [
    "BACKENDS",
    "ON_BOTH_BACKENDS",
    "Combined",
    "LogAndStore",
    "open_backend",
    "open_combined",
]

BACKENDS = [pytest.param("sqlite"), pytest.param("nats", marks=pytest.mark.nats)]
ON_BOTH_BACKENDS = pytest.mark.parametrize("log_backend", BACKENDS, indirect=True)
"""For end-to-end tests: their daemons run on SQLite, then on JetStream (``log_backend``)."""
RETENTION_SECS = 7 * 86400.0


@asynccontextmanager
async def open_backend(
    name: str, tmp_path: Path
) -> AsyncIterator[tuple[Log, Store, NatsServer | None]]:
    """The backend ``name`` (``sqlite`` or ``nats``): its log, its store, and the NATS server
    under it (``None`` for SQLite)."""
    if name == "sqlite":
        sqlite = await SqliteLog.open(tmp_path / "data")
        try:
            yield sqlite, sqlite, None
        finally:
            await sqlite.aclose()
        return
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        options = NatsOptions(server.url)
        log = await JetStreamLog.open(options, RETENTION_SECS)
        store = await KvStore.open(options)
        try:
            yield log, store, server
        finally:
            await store.aclose()
            await log.aclose()
    finally:
        server.stop()


class LogAndStore(Log, Store, Protocol):
    """One object that is both the log and the store: ``SqliteLog``, or ``Combined``."""


class Combined:
    """A JetStream log and store as one object, as ``SqliteLog`` is both: for tests written
    against one object that is both."""

    def __init__(self, log: Log, store: Store) -> None:
        self.log = log
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log if hasattr(self.log, name) else self.store, name)

    @property
    def last_offset(self) -> int:
        return self.log.last_offset


@asynccontextmanager
async def open_combined(name: str, tmp_path: Path) -> AsyncIterator[LogAndStore]:
    """The backend ``name`` as one object that is both its log and its store."""
    async with open_backend(name, tmp_path) as (log, store, _):
        yield log if isinstance(log, SqliteLog) else Combined(log, store)
