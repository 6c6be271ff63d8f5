"""``streamer streams`` and ``streamer top``: what the streams of a running service are doing,
read from its HTTP API (``GET /api/v2/data_stream``) with a token.

``streams`` prints one table; ``top`` redraws it every ``interval`` seconds with delivery rates
computed between two reads, the way ``vector top`` shows components.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from streamer.client import ServiceError

__all__ = ["fetch_streams", "show_streams", "table", "top"]

_COLUMNS = ("ID", "NAME", "ORG", "DESTINATION", "VERSION", "STATUS", "PENDING", "DELIVERED")


async def fetch_streams(session: aiohttp.ClientSession, url: str, token: str) -> list[Any]:
    """Every stream the token may see; ``ServiceError`` with the service's answer otherwise."""
    address = f"{url.rstrip('/')}/api/v2/data_stream"
    try:
        async with session.get(address, headers={"Authorization": f"Bearer {token}"}) as answer:
            if answer.status != 200:
                raise ServiceError(f"{address}: {answer.status}: {await answer.text()}")
            streams: list[Any] = await answer.json()
            return streams
    except aiohttp.ClientError as exc:
        raise ServiceError(f"{address}: {exc}") from None


def table(streams: Sequence[Any], rates: dict[int, float] | None = None) -> str:
    """The streams as aligned columns; with ``rates``, a records/s column and the last result."""
    head = [*_COLUMNS, *(("RATE/S",) if rates is not None else ()), "LAST", "ERROR"]
    rows = [head]
    for stream in streams:
        stats = stream.get("stats") or {}
        error = stream.get("error") or {}
        row = [
            str(stream["id"]),
            _cut(stream.get("name") or "", 24),
            str((stream.get("organisation") or {}).get("id", "")),
            str((stream.get("destination") or {}).get("connection_type", "")),
            str(stream.get("format_version", "")),
            str((stream.get("status") or {}).get("description", "")),
            f"{stats.get('pending_records', 0):,}",
            f"{stats.get('delivered_records', 0):,}",
        ]
        if rates is not None:
            row.append(f"{rates.get(stream['id'], 0.0):,.0f}")
        row.append(str(stats.get("last_result_code") or "-"))
        row.append(_cut(error.get("message") or "", 60))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def show_streams(url: str, token: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        streams = await fetch_streams(session, url, token)
    print(table(streams) if streams else "no data streams")


async def top(url: str, token: str, interval: float, rounds: int | None = None) -> None:
    """Redraw the table every ``interval`` seconds (``rounds`` times, or until Ctrl-C)."""
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    delivered: dict[int, int] = {}
    before = time.monotonic()
    shown = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while rounds is None or shown < rounds:
            streams = await fetch_streams(session, url, token)
            now = time.monotonic()
            elapsed = max(now - before, 1e-9)
            rates: dict[int, float] = {}
            for stream in streams:
                count = int((stream.get("stats") or {}).get("delivered_records", 0))
                if stream["id"] in delivered:
                    rates[stream["id"]] = max(count - delivered[stream["id"]], 0) / elapsed
                delivered[stream["id"]] = count
            before = now
            stamp = time.strftime("%H:%M:%S")
            heading = f"streamer top — {url} — {len(streams)} streams — {stamp} (Ctrl-C quits)"
            print(f"{clear}{heading}\n\n{table(streams, rates)}\n", flush=True)
            shown += 1
            if rounds is None or shown < rounds:
                await asyncio.sleep(interval)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
