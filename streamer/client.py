"""A small ingest client for ``streamer replay`` and ``streamer simulate``.

Posts NDJSON batches to a running service, a few in flight, retrying 503 (the log is busy or
the service is draining) after its ``Retry-After``. Any other refusal stops with the service's
own message.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp

__all__ = ["IngestClient", "Progress", "ServiceError"]


class ServiceError(Exception):
    """The service refused a request or could not be reached; the message says which."""


@dataclass
class Progress:
    """A one-line progress report on a terminal (nothing when stderr is not one)."""

    label: str
    total: int | None = None
    done: int = 0
    more: Callable[[], str] | None = None
    """Appended to the line on each refresh (``streamer demo``: what the webhook received)."""
    _started: float = field(default_factory=time.monotonic)
    _shown: float = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if sys.stderr.isatty() and now - self._shown >= 0.2:
            self._shown = now
            self._print("\r")

    def finish(self) -> None:
        self._print("\r" if sys.stderr.isatty() else "")
        print(file=sys.stderr)

    def _print(self, start: str) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        of = f"/{self.total:,}" if self.total is not None else ""
        percent = f" {100 * self.done / self.total:5.1f}%" if self.total else ""
        line = f"{self.label}: {self.done:,}{of} records{percent}, {self.done / elapsed:,.0f}/s"
        if self.more is not None:
            line += self.more()
        erase = "\x1b[K" if sys.stderr.isatty() else ""  # what a longer line left behind
        print(f"{start}{line}{erase}", end="", file=sys.stderr, flush=True)


class IngestClient:
    def __init__(self, url: str, token: str, in_flight: int = 4) -> None:
        self._base = url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
        }
        self._in_flight = in_flight

    async def post_all(
        self, batches: AsyncIterator[tuple[str, list[bytes]]], progress: Progress
    ) -> int:
        """Post every ``(kind, lines)`` batch (kind ``events`` or ``usage``); return the count.

        Raises ``ServiceError`` for the first batch the service refused, and whatever reading
        ``batches`` raised, as it is."""
        slots = asyncio.Semaphore(self._in_flight)
        timeout = aiohttp.ClientTimeout(total=120)

        async def send(session: aiohttp.ClientSession, kind: str, lines: list[bytes]) -> None:
            try:
                await self._post(session, kind, lines)
                progress.add(len(lines))
            finally:
                slots.release()

        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                asyncio.TaskGroup() as group,
            ):
                async for kind, lines in batches:
                    await slots.acquire()
                    group.create_task(send(session, kind, lines))
        except* Exception as failed:  # the first failure (a refused batch, a bad input)
            raise failed.exceptions[0] from None
        finally:
            progress.finish()
        return progress.done

    async def _post(self, session: aiohttp.ClientSession, kind: str, lines: list[bytes]) -> None:
        body = b"\n".join(lines)
        url = f"{self._base}/api/v1/ingest/{kind}"
        while True:
            try:
                async with session.post(url, data=body, headers=self._headers) as response:
                    if response.status == 202:
                        return
                    text = await response.text()
                    if response.status != 503:
                        raise ServiceError(f"{url}: {response.status}: {text}")
                    wait = float(response.headers.get("Retry-After", "1"))
            except aiohttp.ClientError as exc:
                raise ServiceError(f"{url}: {exc}") from None
            await asyncio.sleep(wait)
