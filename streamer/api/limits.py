"""Time a request may take to send its body: all of it within ``body_timeout_secs`` of the
handler asking for it, or 408 and the connection closed. (Headers have their own bound: the
listener closes a connection that has not sent a whole request head within
``header_timeout_secs``, see ``streamer.api.protocol``.)"""

from __future__ import annotations

import asyncio

from aiohttp import web

from streamer.api.errors import ApiError
from streamer.api.services import SERVICES

__all__ = ["read_body"]


async def read_body(request: web.Request) -> bytes:
    """The request's body, or 408 (connection closed) when it does not arrive in time."""
    timeout = request.app[SERVICES].settings.body_timeout_secs
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            408, f"the request body did not arrive within {timeout:g} s", close=True
        ) from None
