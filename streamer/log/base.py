"""The record log and the state store, as the rest of the service sees them.

Two interfaces, each implemented by SQLite (the embedded default) and, later, NATS JetStream:

- ``Log``: records. Appended in groups, read back as one organisation's records of some kinds
  after a position. Every record has an offset, and each organisation's records of one kind
  form a lane that a reader can follow without touching any other organisation's records (on
  JetStream: subjects ``records.<organisation>.<kind>`` in one stream, the offset being the
  stream sequence, read by a consumer filtered on the lane's subjects).
- ``Store``: data streams (their definition and status, written by the fan-out engine only),
  their positions (written by the stream's worker only, through ``commit_position``), dead
  letters, tokens and the legacy API's callbacks (on JetStream: key-value buckets, mirrored in
  each replica by a watch).
- ``Leases``: which streams this process delivers (on JetStream: a lease per stream in a
  key-value bucket whose entries expire, so a replica that dies loses its streams to others).

Guarantees every backend gives:
- ``append`` returns only after the entries are durably stored, all of them or none;
- offsets are positive, increase in append order and are never reused, even after the entries
  are trimmed;
- ``read`` returns entries in offset order; the store's writes are durable on return.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple, Protocol, TypedDict

from schemas import Kind
from streamer.spec import StreamSpec

__all__ = [
    "CallbackRow",
    "DeadLetter",
    "Entry",
    "Leases",
    "Log",
    "LogError",
    "LogFullError",
    "Position",
    "Row",
    "Store",
    "Stream",
    "StreamError",
    "StreamStatus",
    "TokenRow",
]


class LogError(Exception):
    """The log or the store failed (I/O, corruption); the message says what."""


class LogFullError(LogError):
    """The log cannot take more now (disk full); retry later."""


class Entry(NamedTuple):
    """One record to append: its routing facts and its canonical JSON bytes."""

    kind: Kind
    organisation: int
    event_type: int | None
    alert: int | None  # 0/1, events only
    body: bytes


class Row(NamedTuple):
    """One stored record with its offset."""

    offset: int
    kind: Kind
    organisation: int
    event_type: int | None
    alert: int | None
    body: bytes


class StreamStatus(IntEnum):
    """A data stream's status; the values are the API's status ids."""

    RUNNING = 1
    PAUSED = 2
    ERROR = 3
    PENDING = 4


class StreamError(TypedDict):
    """Why a stream is in Error."""

    message: str
    http_status: int | None
    at: str


@dataclass(frozen=True, slots=True)
class Position:
    """How far a stream got: every record of it up to ``offset`` is acknowledged."""

    offset: int
    delivered: int = 0
    last_delivery_at: str | None = None
    last_result_code: int | None = None
    inflight: int | None = None
    """For stable batches: the last offset the batch being sent covers, stored before it is
    sent, so the batch after a crash is cut at the same place."""
    last_event_id: int | None = None
    last_usage_id: int | None = None
    """The ids of the last event and usage record delivered since the service started (kept in
    memory only; the legacy API lists them as ``last_event_id``/``last_traffic_log_id``)."""


@dataclass(slots=True)
class Stream:
    """A data stream: its definition and status (the engine's to write) and its position
    (its worker's to write)."""

    id: int
    organisation: int
    spec: StreamSpec
    status: StreamStatus
    error: StreamError | None
    created_at: str
    position: Position
    last_event_id: int | None = None
    last_usage_id: int | None = None
    """The ids of the last event and usage record delivered since the service started (its
    worker's to write, kept in memory only; the legacy API lists them as ``last_event_id`` and
    ``last_traffic_log_id``)."""


class DeadLetter(NamedTuple):
    """A record a destination refused for good, kept with the reason until replayed."""

    id: int
    offset: int
    kind: Kind
    body: bytes  # canonical JSON, kept here so retention never takes it
    reason: str
    at: str
    queued: bool  # waiting to be sent again


class TokenRow(NamedTuple):
    id: int
    digest: bytes
    role: str
    organisation: int | None
    name: str
    created_at: str


class CallbackRow(NamedTuple):
    """A callback URL of the legacy API, owned by one organisation."""

    id: int
    organisation: int
    url: str


class Log(Protocol):
    """Records in; one organisation's records of some kinds out, by offset."""

    async def append(self, entries: Sequence[Entry]) -> int:
        """Store ``entries`` durably in one go; return the offset of the last one."""
        ...

    @property
    def last_offset(self) -> int:
        """The newest committed offset: every retained record up to it can be read."""
        ...

    async def read(
        self, organisation: int, kinds: Collection[Kind], after: int, limit: int
    ) -> list[Row]:
        """Up to ``limit`` records of ``organisation`` and ``kinds`` with offsets greater than
        ``after``, in offset order. Fewer than ``limit``: these are all of them up to the
        ``last_offset`` seen before the call."""
        ...

    async def pending(self, organisation: int, kinds: Collection[Kind], after: int) -> int:
        """How many records of ``organisation`` and ``kinds`` come after offset ``after``."""
        ...

    async def bounds(self) -> tuple[int, int]:
        """(offset of the oldest retained record - 1, offset of the newest record)."""
        ...

    async def trim(self, older_than_secs: float) -> int:
        """Drop records appended more than ``older_than_secs`` ago; return how many."""
        ...

    async def aclose(self) -> None:
        """Finish pending writes and close."""
        ...


class Store(Protocol):
    """Data streams, their positions, dead letters and tokens."""

    async def create_stream(self, organisation: int, spec: StreamSpec, offset: int) -> Stream:
        """Store a new stream, status Pending, positioned after ``offset``."""
        ...

    async def streams(self) -> list[Stream]: ...

    async def define_stream(self, stream_id: int, spec: StreamSpec) -> None:
        """Replace the stream's definition."""
        ...

    async def set_status(
        self, stream_id: int, status: StreamStatus, error: StreamError | None
    ) -> None: ...

    async def commit_position(self, stream_id: int, position: Position) -> None:
        """Record how far the stream got; the only write its worker makes."""
        ...

    async def delete_stream(self, stream_id: int) -> None: ...

    async def add_dead_letters(
        self, stream_id: int, letters: Sequence[tuple[int, Kind, bytes, str]]
    ) -> None:
        """Keep ``(offset, kind, canonical body, reason)`` records the destination refused;
        a record kept already gets the new reason and waits for the next replay."""
        ...

    async def dead_letters(
        self, stream_id: int, *, queued_only: bool = False, limit: int = 1000
    ) -> list[DeadLetter]:
        """The stream's dead letters, oldest first."""
        ...

    async def requeue_dead_letters(self, stream_id: int) -> int:
        """Mark every dead letter of the stream to be sent again; return how many."""
        ...

    async def queued_replays(self) -> set[int]:
        """The streams that have dead letters marked to be sent again (by any replica)."""
        ...

    async def drop_dead_letters(self, ids: Sequence[int]) -> None: ...

    async def add_token(
        self, digest: bytes, role: str, organisation: int | None, name: str
    ) -> int: ...

    async def token(self, digest: bytes) -> TokenRow | None: ...

    async def tokens(self) -> list[TokenRow]: ...

    async def delete_token(self, token_id: int) -> bool: ...

    async def add_callback(self, organisation: int, url: str) -> int:
        """Keep a legacy API callback URL; return its id."""
        ...

    async def callbacks(self) -> list[CallbackRow]:
        """Every legacy API callback, by id."""
        ...

    async def delete_callback(self, callback_id: int) -> None: ...

    async def aclose(self) -> None:
        """Finish pending writes and close."""
        ...


class Leases(Protocol):
    """Which data streams this process delivers: each stream is delivered by one process at a
    time (SQLite: the one service; JetStream: the replica holding the stream's lease)."""

    async def hold(self, stream_ids: Collection[int]) -> set[int]:
        """Renew the leases this process holds among ``stream_ids`` and take the free ones;
        return the ids whose lease it holds now."""
        ...

    async def release(self, stream_ids: Collection[int]) -> None:
        """Give up these leases, so that another process may take the streams at once."""
        ...
