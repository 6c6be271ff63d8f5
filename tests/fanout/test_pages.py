"""Rendering of stored records for a stream (``render_payload``), and pages whose read
fails."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Collection
from typing import Any

import orjson
import pytest

from connectors.base import Form, Rendering
from schemas import Kind, Version, dumps, parse_record
from streamer.fanout.pages import Lane, Pages, render_payload
from streamer.log.base import LogError, Row
from tests.schemas.samples import EVENT


def test_an_integer_beyond_64_bits_is_rendered_exactly_in_every_version() -> None:
    record = parse_record({**EVENT, "detail": {"counter": 10**30}}, Kind.EVENT)
    stored = dumps(record, Kind.EVENT, Version.NEW)
    renderings = [Rendering(version) for version in Version]  # the legacy CSV has no detail
    for rendering in [*renderings, Rendering(Version.NEW, form=Form.CSV)]:
        assert b"1" + b"0" * 30 in render_payload(Kind.EVENT, stored, rendering), rendering
    migrated = render_payload(Kind.EVENT, stored, Rendering(Version.MIGRATED))
    assert orjson.loads(migrated.replace(b"1" + b"0" * 30, b"1"))["detail"] == {"counter": 1}


class _FailingLog:
    """A log whose one read waits for ``release``, then fails as NATS away would."""

    last_offset = 10

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def read(
        self, organisation: int, kinds: Collection[Kind], after: int, limit: int
    ) -> list[Row]:
        self.reading.set()
        await self.release.wait()
        raise LogError("reading the log failed: NATS is out of reach, reconnecting")


async def test_a_failed_read_whose_reader_was_stopped_is_nobodys_error() -> None:
    """A worker halted while its page loads leaves the load's failure to nobody: the loop
    must not report it as an exception never retrieved."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    log = _FailingLog()
    pages = Pages(log)  # type: ignore[arg-type]
    lane = Lane(1, (Kind.USAGE,))
    reader = asyncio.create_task(pages.page_after(lane, 0))
    await log.reading.wait()
    reader.cancel()
    log.release.set()
    with pytest.raises(asyncio.CancelledError):
        await reader
    with pytest.raises(LogError):  # the next reader has the failure raised: the load is gone
        await asyncio.wait_for(pages.page_after(lane, 0), 5)
    gc.collect()
    loop.set_exception_handler(None)
    assert reported == []
