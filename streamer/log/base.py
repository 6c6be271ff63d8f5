"""The durable log and the state store, as the rest of the service sees them.

Two backends implement these: SQLite (the embedded default) and NATS JetStream (distributed).
Nothing outside ``streamer.log`` knows which one runs.

Guarantees every backend gives:
- ``append`` returns only after the entries are durably stored, all of them or none;
- offsets are positive, increase by one per entry in append order and are never reused, even
  after the entries are trimmed;
- ``read`` returns entries in offset order; the state store's writes are durable on return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

__all__ = [
    "DeadLetter",
    "Entry",
    "Log",
    "LogError",
    "LogFullError",
    "Row",
    "StreamState",
    "TokenRow",
]


class LogError(Exception):
    """The log or the store failed (I/O, corruption); the message says what."""


class LogFullError(LogError):
    """The log cannot take more now (disk full); retry later."""


class Entry(NamedTuple):
    """One record to append: its routing facts and its canonical JSON bytes."""

    kind: int  # 0 event, 1 usage
    organisation: int
    event_type: int | None
    alert: int | None  # 0/1, events only
    body: bytes


class Row(NamedTuple):
    """One stored record with its offset."""

    offset: int
    kind: int
    organisation: int
    event_type: int | None
    alert: int | None
    body: bytes


@dataclass(slots=True)
class StreamState:
    """A data stream as stored: its definition (API body) and its delivery state."""

    id: int
    organisation: int
    spec: dict[str, Any]
    status: int
    error: dict[str, Any] | None
    cursor: int
    delivered: int
    last_delivery_at: str | None
    last_result_code: int | None
    created_at: str
    inflight: int | None = None
    """For stable batches: the last offset the batch being sent covers, stored before it is
    sent, so the batch after a crash is cut at the same place."""
    last_event_id: int | None = None
    last_usage_id: int | None = None
    """The ids of the last event and usage record delivered since the service started (kept in
    memory only; the legacy API lists them as ``last_event_id``/``last_traffic_log_id``)."""


class DeadLetter(NamedTuple):
    """A record a destination refused for good, kept with the reason until replayed."""

    id: int
    offset: int
    kind: int
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


class Log(Protocol):
    """Records in, records out by offset, plus the small state of streams and tokens."""

    async def append(self, entries: Sequence[Entry]) -> int:
        """Store ``entries`` durably in one go; return the offset of the last one."""
        ...

    @property
    def last_offset(self) -> int:
        """The newest committed offset: every retained record up to it can be read."""
        ...

    async def read(self, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with offsets greater than ``after``, in order."""
        ...

    async def pending(self, after: int, organisation: int, kinds: Sequence[int]) -> int:
        """How many records of ``organisation`` and ``kinds`` (0 event, 1 usage) come after
        offset ``after``."""
        ...

    async def bounds(self) -> tuple[int, int]:
        """(offset of the oldest retained record - 1, offset of the newest record)."""
        ...

    async def trim(self, older_than_secs: float) -> int:
        """Drop records appended more than ``older_than_secs`` ago; return how many."""
        ...

    async def create_stream(
        self, organisation: int, spec: dict[str, Any], cursor: int
    ) -> StreamState:
        """Store a new stream, status Pending, positioned after ``cursor``."""
        ...

    async def streams(self) -> list[StreamState]: ...

    async def save_stream(self, state: StreamState) -> None:
        """Write ``state`` (spec, status, error, cursor and counters) back."""
        ...

    async def delete_stream(self, stream_id: int) -> None: ...

    async def add_dead_letters(
        self, stream_id: int, letters: Sequence[tuple[int, int, bytes, str]]
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

    async def drop_dead_letters(self, ids: Sequence[int]) -> None: ...

    async def add_token(
        self, digest: bytes, role: str, organisation: int | None, name: str
    ) -> int: ...

    async def token(self, digest: bytes) -> TokenRow | None: ...

    async def tokens(self) -> list[TokenRow]: ...

    async def delete_token(self, token_id: int) -> bool: ...

    async def aclose(self) -> None:
        """Finish pending writes and close."""
        ...
