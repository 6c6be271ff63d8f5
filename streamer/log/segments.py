"""Records as the SQLite log holds them: one segment per append, and the lane index.

A segment is the records of one append, in offset order: their canonical bytes joined by
newlines (canonical JSON holds no raw newline) and, per record, where its bytes end, its
organisation, kind, event type and alert flag, each column packed. It is one row, whatever
the number of organisations the append holds.

The lane index (``Lanes``, in memory) lists the offsets of each lane's retained records (a
lane: one organisation's records of one kind). A reader finds its records without reading
anyone else's and counts what waits without reading at all. It takes 8 bytes per retained
record and is rebuilt from the segments' organisation and kind columns when the log opens.
The records of the last minute, up to a number of bytes of them, also stay in memory as rows
(warm), so streams that keep up read without touching the database; an append that no
delivering stream reads (a paused stream's backlog) lets go of them. Readers further behind
read from the database (``cold_rows``): each segment once for all the reads that go together,
and of its bytes only those of their records unless they want many of them.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import accumulate, count
from operator import add
from typing import Any, cast

from schemas import Kind
from streamer.log.base import Entry, LogError, Row

__all__ = ["Lanes", "Segment", "cold_rows"]

_KINDS = (Kind.EVENT, Kind.USAGE)  # a record's kind is stored as its index here
_CODES = {kind: code for code, kind in enumerate(_KINDS)}
_NO_EVENT_TYPE = -(2**63)  # a packed event type that is None
_NO_ALERT = -1  # a packed alert flag that is None
_new_tuple = tuple.__new__
_row = cast(
    Callable[[tuple[int, Kind, int, int | None, int | None, bytes]], Row], partial(_new_tuple, Row)
)

Lane = tuple[int, Kind]
"""An organisation and a kind."""
Plan = list[tuple[int, list[int]]]
"""Records to read from the database: per segment (its first offset), their offsets."""


def pack(typecode: str, values: Iterable[int]) -> bytes:
    """``values`` as a little-endian array of ``typecode``."""
    packed = array(typecode, values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack(typecode: str, blob: bytes) -> array[int]:
    unpacked = array(typecode, blob)
    if sys.byteorder == "big":
        unpacked.byteswap()
    return unpacked


class Segment:
    """The records of one append (one or more); ``first`` is set once the append has its
    offsets."""

    __slots__ = (
        "alerts",
        "bodies",
        "body",
        "count",
        "ends",
        "event_types",
        "first",
        "kinds",
        "organisations",
    )
    first: int
    count: int
    bodies: tuple[bytes, ...]
    body: bytes
    ends: list[int]
    organisations: tuple[int, ...]
    kinds: bytes
    event_types: tuple[int | None, ...]
    alerts: tuple[int | None, ...]

    def __init__(self, entries: Sequence[Entry]) -> None:
        kinds, organisations, event_types, alerts, bodies = zip(*entries, strict=True)
        body = b"\n".join(bodies)
        if body.count(b"\n") != len(bodies) - 1:  # the record would not read back as it was
            raise LogError("a record's bytes hold a raw newline: the log takes canonical JSON")
        self.first = 0
        self.count = len(entries)
        self.bodies = bodies
        self.body = body
        self.ends = list(map(add, accumulate(map(len, bodies)), count()))
        self.organisations = organisations
        self.kinds = bytes(map(_CODES.__getitem__, kinds))
        self.event_types = event_types
        self.alerts = alerts

    def rows(self) -> list[Row]:
        """Its records as rows (once it has its offsets)."""
        kinds = map(_KINDS.__getitem__, self.kinds)
        facts = (self.organisations, self.event_types, self.alerts, self.bodies)
        return list(map(_row, zip(count(self.first), kinds, *facts)))

    def columns(self) -> tuple[bytes, bytes, bytes | None, bytes | None, bytes]:
        """The packed organisations, kinds, event types, alert flags and ends (a column of
        Nones only is ``None``)."""
        types, alerts = self.event_types, self.alerts
        return (
            pack("q", self.organisations),
            self.kinds,
            None
            if types.count(None) == self.count
            else pack("q", (_NO_EVENT_TYPE if t is None else t for t in types)),
            None
            if alerts.count(None) == self.count
            else pack("b", (_NO_ALERT if a is None else a for a in alerts)),
            pack("q", self.ends),
        )


class Lanes:
    """The offsets of every lane's retained records, the offset range of every retained
    segment, and the rows of the warm segments. Touched by the event loop only."""

    def __init__(self, warm_bytes: int, warm_secs: float = 60.0) -> None:
        """The records appended in the last ``warm_secs`` stay in memory, up to about
        ``warm_bytes`` of them (the newest append always)."""
        self.warm_bytes = warm_bytes
        self.warm_secs = warm_secs
        self._offsets: dict[Lane, array[int]] = {}
        self._firsts: array[int] = array("q")  # of the retained segments, in offset order
        self._warm: deque[tuple[int, int, int, float]] = deque()  # per warm segment, oldest
        # first: its first offset, record count, size and the monotonic time it was added
        self._warm_size = 0
        self._rows: list[Row | None] = []  # the warm rows in offset order, after cooled ones
        self._rows_from = 0  # the offset of _rows[0]
        self.read_soon: Callable[[int], bool] = _anyone
        """Whether a stream that keeps up reads an organisation's records (a paused stream's
        backlog need not take memory)."""

    def add(self, segment: Segment) -> None:
        """A committed append. It stays warm if a stream that keeps up reads one of its
        organisations; otherwise nothing older does either (warm segments are the newest)."""
        self._index(segment.first, segment.organisations, segment.kinds)
        if not any(map(self.read_soon, set(segment.organisations))):
            self._cool(len(self._warm))
            return
        if segment.first != self._rows_from + len(self._rows):  # the rows stay in offset order
            self._cool(len(self._warm))
        if not self._warm:
            self._rows, self._rows_from = [], segment.first
        now = time.monotonic()
        size = _size(segment)
        self._rows += segment.rows()
        self._warm.append((segment.first, segment.count, size, now))
        self._warm_size += size
        while len(self._warm) > 1:
            _, _, _, at = self._warm[0]
            if self._warm_size <= self.warm_bytes and now - at <= self.warm_secs:
                break
            self._cool(1)

    @property
    def warm_size(self) -> int:
        """About how many bytes the warm segments take."""
        return self._warm_size

    def add_stored(self, first: int, organisations: bytes, kinds: bytes) -> None:
        """A segment found in the database when it opens (in offset order)."""
        self._index(first, unpack("q", organisations), kinds)

    def trim(self, keep_from: int) -> None:
        """Forget the segments before offset ``keep_from``."""
        del self._firsts[: bisect_left(self._firsts, keep_from)]
        for lane, offsets in list(self._offsets.items()):
            del offsets[: bisect_left(offsets, keep_from)]
            if not offsets:
                del self._offsets[lane]
        self._cool(bisect_left([first for first, *_ in self._warm], keep_from))

    def oldest(self) -> int | None:
        """The first offset of the oldest retained segment."""
        return self._firsts[0] if self._firsts else None

    def count_after(self, lane: Lane, after: int) -> int:
        offsets = self._offsets.get(lane)
        return 0 if offsets is None else len(offsets) - bisect_right(offsets, after)

    def read(self, lane: Lane, after: int, limit: int) -> tuple[Plan, list[Row]]:
        """Up to ``limit`` of the lane's records after ``after``: the plan of those to read
        from the database (the older ones), and the rows of the warm ones (the newer)."""
        offsets = self._offsets.get(lane)
        if offsets is None or limit <= 0:
            return [], []
        start = bisect_right(offsets, after)
        wanted = offsets[start : start + limit]
        split = bisect_left(wanted, self._warm[0][0] if self._warm else sys.maxsize)
        rows, base = self._rows, self._rows_from
        warm = [rows[offset - base] for offset in wanted[split:]]
        return self._plan(wanted[:split]), cast(list[Row], warm)

    def _cool(self, segments: int) -> None:
        """Let go of the ``segments`` oldest warm segments. Their rows become ``None``, and
        are dropped from the list once they are the larger part of it."""
        for _ in range(segments):
            first, records, size, _ = self._warm.popleft()
            start = first - self._rows_from
            self._rows[start : start + records] = [None] * records
            self._warm_size -= size
        cooled = self._warm[0][0] - self._rows_from if self._warm else len(self._rows)
        if cooled * 2 > len(self._rows):
            del self._rows[:cooled]
            self._rows_from += cooled

    def _index(self, first: int, organisations: Iterable[int], kinds: bytes) -> None:
        self._firsts.append(first)
        index = self._offsets
        for offset, organisation, code in zip(count(first), organisations, kinds):
            lane = organisation, _KINDS[code]
            offsets = index.get(lane)
            if offsets is None:
                offsets = index[lane] = array("q")
            offsets.append(offset)

    def _plan(self, offsets: array[int]) -> Plan:
        plan: Plan = []
        firsts = self._firsts
        end = -1
        for offset in offsets:
            if offset >= end:
                k = bisect_right(firsts, offset) - 1
                end = firsts[k + 1] if k + 1 < len(firsts) else sys.maxsize
                group: list[int] = []
                plan.append((firsts[k], group))
            group.append(offset)
        return plan


def _anyone(organisation: int) -> bool:
    return True


def _size(segment: Segment) -> int:
    """About the memory a warm segment's rows take."""
    return len(segment.body) + 160 * segment.count


def cold_rows(conn: sqlite3.Connection, reads: Sequence[tuple[Lane, Plan]]) -> list[list[Row]]:
    """The rows of each of ``reads`` (a lane and its plan) from the database. Each segment is
    read once for all of them: its small columns and, of its bytes, all of them when the reads
    want many of its records, else only those (a segment trimmed meanwhile gives none)."""
    wanted: dict[int, list[tuple[int, list[int]]]] = {}
    for index, (_, plan) in enumerate(reads):
        for first, offsets in plan:
            wanted.setdefault(first, []).append((index, offsets))
    found: list[list[Row]] = [[] for _ in reads]
    for first in sorted(wanted):
        stored = conn.execute(
            "SELECT count, event_types, alerts, ends FROM segments WHERE first = ?", (first,)
        ).fetchone()
        if stored is None:
            continue
        count, types, alerts, ends = _cold_columns(*stored)
        with conn.blobopen("segments", "body", first, readonly=True) as blob:
            many = sum(len(offsets) for _, offsets in wanted[first]) * 8 >= count
            source = blob.read() if many else blob
            for index, offsets in wanted[first]:
                organisation, kind = reads[index][0]
                rows = found[index]
                for offset in offsets:
                    i = offset - first
                    body = source[ends[i - 1] + 1 if i else 0 : ends[i]]
                    values = (offset, kind, organisation, types(i), alerts(i), body)
                    rows.append(_new_tuple(Row, values))
    return found


def _cold_columns(
    count: int, event_types: bytes | None, alerts: bytes | None, ends: bytes
) -> tuple[int, Any, Any, array[int]]:
    """A stored segment's count, event type and alert flag by index, and ends."""
    return (
        count,
        _column("q", event_types, _NO_EVENT_TYPE),
        _column("b", alerts, _NO_ALERT),
        (unpack("q", ends)),
    )


def _column(typecode: str, blob: bytes | None, none: int) -> Any:
    if blob is None:
        return lambda _: None
    values = unpack(typecode, blob)
    return lambda i: None if values[i] == none else values[i]
