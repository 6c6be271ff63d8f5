"""Shared reading and rendering of the log for every stream.

The log is read in fixed pages of offsets. Streams at nearby positions share one read of a page
and one rendering of each record per distinct ``Rendering``: ten streams that all want
``migrated`` JSON render each record once. ``new`` JSON is the stored canonical bytes
themselves: no work at all. A bounded number of pages stay cached; the page still being
written is read again when a stream needs what was appended after it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from connectors.base import Form, Rendering
from schemas import Kind, Version, csv_row, dumps
from streamer.log.base import Log, Row

__all__ = ["Page", "Pages", "render_payload"]

KINDS = (Kind.EVENT, Kind.USAGE)


def render_payload(kind_id: int, body: bytes, rendering: Rendering) -> bytes:
    """One record's canonical bytes rendered as ``rendering`` asks."""
    if rendering.form is Form.JSON and rendering.version is Version.NEW:
        return body
    kind = KINDS[kind_id]
    record = orjson.loads(body)
    if rendering.form is Form.CSV:
        return csv_row(record, kind, rendering.version).encode()
    return dumps(record, kind, rendering.version, rendering.shape)


@dataclass(slots=True)
class Page:
    """Rows of one page (``number``), complete up to offset ``end``."""

    number: int
    rows: list[Row]
    end: int
    rendered: dict[Rendering, list[bytes | None]] = field(default_factory=dict)

    def payload(self, index: int, rendering: Rendering) -> bytes:
        """Row ``index`` rendered as ``rendering`` asks, computed once per page and rendering."""
        row = self.rows[index]
        if rendering.form is Form.JSON and rendering.version is Version.NEW:
            return row.body
        cache = self.rendered.get(rendering)
        if cache is None:
            cache = self.rendered[rendering] = [None] * len(self.rows)
        payload = cache[index]
        if payload is None:
            payload = cache[index] = render_payload(row.kind, row.body, rendering)
        return payload


class Pages:
    """Pages of ``size`` offsets read from ``log``; at most ``keep`` of them cached."""

    def __init__(self, log: Log, size: int = 1024, keep: int = 64) -> None:
        self._log = log
        self.size = size
        self._keep = keep
        self._cache: OrderedDict[int, Page] = OrderedDict()
        self._loading: dict[int, asyncio.Future[Page]] = {}

    async def page_after(self, offset: int) -> Page:
        """The page holding ``offset + 1``, read up to the log's last committed offset."""
        number = offset // self.size
        last_offset = self._log.last_offset
        page = self._cache.get(number)
        if page is not None and page.end >= min(last_offset, self._last_of(number)):
            self._cache.move_to_end(number)
            return page
        loading = self._loading.get(number)
        if loading is None:  # a listed load is always unfinished: it unlists itself first
            loading = asyncio.ensure_future(self._load(number, last_offset))
            self._loading[number] = loading
        return await asyncio.shield(loading)

    def _last_of(self, number: int) -> int:
        return (number + 1) * self.size

    async def _load(self, number: int, last_offset: int) -> Page:
        try:
            rows = await self._log.read(number * self.size, self.size)
        finally:
            del self._loading[number]
        last = self._last_of(number)
        if rows and rows[-1].offset > last:  # the page was trimmed: rows of the next pages
            rows = [row for row in rows if row.offset <= last]
        end = max(min(last_offset, last), rows[-1].offset if rows else 0)
        page = Page(number, rows, end)
        self._cache[number] = page
        self._cache.move_to_end(number)
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return page
