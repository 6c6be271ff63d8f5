"""Requests per client IP in a sliding window, as the platform does: beyond the limit, 403
``rate_limited`` until the rate is back under it (API.md §2). Ingest is not counted: producers
send far more requests than people do, and the log's own back-pressure (503) covers it.

The window slides by weighting the previous fixed window's count by how much of it still
overlaps. Memory is bounded: at most ``max_clients`` addresses are counted per window; a new
address beyond that passes uncounted (failing open beats refusing everyone).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from streamer.api.errors import ApiError

__all__ = ["RateLimiter", "rate_limit_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimiter:
    def __init__(self, limit: int, window_secs: float, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.window_secs = window_secs
        self._max_clients = max_clients
        self._window = 0
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        """Count one request of ``client``; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        window = int(now // self.window_secs)
        if window != self._window:
            self._previous = self._current if window == self._window + 1 else {}
            self._current = {}
            self._window = window
        count = self._current.get(client, 0) + 1
        if count == 1 and len(self._current) >= self._max_clients:
            return True
        overlap = 1.0 - (now % self.window_secs) / self.window_secs
        if count + self._previous.get(client, 0) * overlap > self.limit:
            return False
        self._current[client] = count
        return True


def rate_limit_middleware(limiter: RateLimiter) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        counted = path.startswith("/api/") and not path.startswith("/api/v1/ingest/")
        if counted and not limiter.allow(request.remote or "unknown"):
            raise ApiError(
                403,
                f"more than {limiter.limit} requests in {limiter.window_secs:g} s from this"
                " address; slow down",
                "rate_limited",
                headers={"Retry-After": str(max(1, int(limiter.window_secs / 10)))},
            )
        return await handler(request)

    return middleware
