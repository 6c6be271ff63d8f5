"""The HTTP listener's own answers in the API's error format.

aiohttp answers a request it cannot parse (a header line over 8 KiB, too many headers, a bad
chunk size, ``Content-Length`` with chunked encoding, a negative ``Content-Length``, ...)
before any handler or middleware runs, in plain text, and logs a traceback. ``JsonErrorRunner``
serves the application with a request handler whose answer is the common JSON error body,
with one log line naming the status and the parser's error class (never the request's bytes,
which may hold credentials).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from streamer.api.errors import ApiError, problem

__all__ = ["JsonErrorRunner"]

_log = structlog.get_logger("streamer.api")


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is under way: the connection is broken
            raise ConnectionError("an answer was already started")
        reason = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
        _log.info("unreadable HTTP request", status=status, reason=reason, client=request.remote)
        text = f"the request cannot be read as HTTP/1.1 ({reason})"
        return problem(ApiError(status, text, close=True))


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer unparsable requests with JSON errors."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        options: dict[str, Any] = dict(server._kwargs)
        return _JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **options,
        )
