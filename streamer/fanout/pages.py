"""Shared reading and rendering of the log for every stream.

A stream reads one lane: its organisation's records of its kinds. The lane is read in pages; a
page holds every record of the lane after its ``start`` up to its ``end``, so any stream of
the lane whose position lies in between takes its next records from that page instead of
reading the log again. Streams of one lane therefore share one read of each page and one
rendering of each record per distinct ``Rendering``: ten streams that all want ``migrated``
JSON render each record once. ``new`` JSON is the stored canonical bytes themselves: no work
at all. A bounded number of pages stay cached per lane, and a bounded number of records.

A record that cannot be rendered as a stream asks (a renderer raised for it) is
``Unrenderable``: that record, not its page or its batch, is the failure.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

from connectors.base import Form, Rendering
from schemas import Kind, Shape, Version, csv_row_stored, dumps_stored
from streamer.log.base import Log, Row

__all__ = ["Lane", "Page", "Pages", "Unrenderable", "render_payload"]

_body = attrgetter("body")


class Unrenderable(Exception):
    """A record that cannot be rendered as a stream asks; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render_payload(kind: Kind, body: bytes, rendering: Rendering) -> bytes:
    """One record's canonical bytes rendered as ``rendering`` asks; ``Unrenderable`` when a
    renderer fails for it (whatever it raises: the failure belongs to this record alone)."""
    if rendering.form is Form.JSON and rendering.version is Version.NEW:
        return body
    try:
        if rendering.form is Form.CSV:
            return csv_row_stored(body, kind, rendering.version)
        return dumps_stored(body, kind, rendering.version, rendering.shape)
    except Exception as exc:  # RecursionError, TypeError …: a renderer's bug, for this record
        raise Unrenderable(
            f"the record cannot be rendered as {_described(rendering)}: {type(exc).__name__}: {exc}"
        ) from None


def _described(rendering: Rendering) -> str:
    shape = "" if rendering.shape is Shape.FULL else f" ({rendering.shape.value} shape)"
    form = "a CSV row" if rendering.form is Form.CSV else "JSON"
    return f"{form} in format {rendering.version.value}{shape}"


class Lane(NamedTuple):
    """What a stream reads: one organisation's records of some kinds."""

    organisation: int
    kinds: tuple[Kind, ...]


@dataclass(slots=True)
class Page:
    """Every record of a lane with ``start < offset <= end``, in offset order."""

    start: int
    end: int
    rows: list[Row]
    rendered: dict[Rendering, list[bytes | Unrenderable | None]] = field(default_factory=dict)

    def covers(self, position: int) -> bool:
        return self.start <= position < self.end

    def render(
        self, picked: Sequence[int], rendering: Rendering
    ) -> tuple[list[bytes], dict[int, str]]:
        """Rows ``picked`` (indices, in order) rendered as ``rendering`` asks, each computed once
        per page and rendering; and the rows a renderer failed on, index → why (left out of
        the payloads; remembered too)."""
        rows = self.rows
        if rendering.form is Form.JSON and rendering.version is Version.NEW:
            return list(map(_body, map(rows.__getitem__, picked))), {}
        cache = self.rendered.get(rendering)
        if cache is None:
            cache = self.rendered[rendering] = [None] * len(rows)
        payloads: list[bytes] = []
        failed: dict[int, str] = {}
        for index in picked:
            payload = cache[index]
            if payload is None:
                row = rows[index]
                try:
                    payload = render_payload(row.kind, row.body, rendering)
                except Unrenderable as failure:
                    payload = failure
                cache[index] = payload
            if isinstance(payload, Unrenderable):
                failed[index] = payload.reason
            else:
                payloads.append(payload)
        return payloads, failed


class Pages:
    """Pages of up to ``size`` records read from ``log``; ``keep`` pages cached per lane, and
    about ``rows`` records in all (the lanes read longest ago go first)."""

    def __init__(self, log: Log, size: int = 2048, keep: int = 8, rows: int = 65536) -> None:
        self._log = log
        self._size = size
        self._keep = keep
        self._rows = rows
        self._cached_rows = 0
        self._cache: OrderedDict[Lane, list[Page]] = OrderedDict()
        self._loading: dict[Lane, asyncio.Future[Page]] = {}

    async def page_after(self, lane: Lane, position: int) -> Page:
        """A page of ``lane`` covering ``position``; call only while ``position`` is before
        the log's last committed offset (the page then holds what comes after it)."""
        while True:
            page = self._cached(lane, position)
            if page is not None:
                return page
            loading = self._loading.get(lane)
            if loading is None:  # a listed load is always unfinished: it unlists itself first
                loading = self._loading[lane] = asyncio.ensure_future(self._load(lane, position))
                loading.add_done_callback(_retrieved)
            page = await asyncio.shield(loading)
            if page.covers(position):
                return page

    def _cached(self, lane: Lane, position: int) -> Page | None:
        pages = self._cache.get(lane)
        if pages is None:
            return None
        self._cache.move_to_end(lane)
        for page in pages:
            if page.covers(position):
                return page
        return None

    async def _load(self, lane: Lane, position: int) -> Page:
        last_offset = self._log.last_offset
        try:
            rows = await self._log.read(lane.organisation, lane.kinds, position, self._size)
        finally:
            del self._loading[lane]
        end = rows[-1].offset if len(rows) == self._size else last_offset
        page = Page(position, max(end, position), rows)
        pages = self._cache.setdefault(lane, [])
        pages.append(page)
        self._cached_rows += len(rows)
        if len(pages) > self._keep:
            self._cached_rows -= len(pages.pop(0).rows)
        self._cache.move_to_end(lane)
        while self._cached_rows > self._rows and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_rows -= sum(len(page.rows) for page in dropped)
        return page


def _retrieved(load: asyncio.Future[Page]) -> None:
    """Take a load's failure off the loop's hands: each reader waiting for it has it raised,
    and one whose reader was cancelled meanwhile is nobody's ("never retrieved")."""
    if not load.cancelled():
        load.exception()
