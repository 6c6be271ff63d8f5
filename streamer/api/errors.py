"""Every error answer is JSON: ``{"error_code", "error_token", "message"}`` (+ ``errors``).

A store out of reach (``LogError``: NATS away, a full disk) is 503 with ``Retry-After``
wherever a handler meets it, not an internal error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from streamer.fanout.engine import StreamGone
from streamer.log.base import LogError

__all__ = ["ApiError", "Handler", "error_middleware", "problem"]

_log = structlog.get_logger("streamer.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
"""Headers of aiohttp's own error answers that are part of their meaning (RFC 9110)."""
_TOKENS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An answer other than success, raised from a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        token: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.token = token or _TOKENS.get(status, "error")
        self.errors = errors
        self.headers = headers
        self.close = close
        """Close the connection after the answer (the rest of the request cannot be trusted)."""


def problem(error: ApiError) -> web.Response:
    body: dict[str, Any] = {
        "error_code": error.status,
        "error_token": error.token,
        "message": error.message,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    response = web.json_response(body, status=error.status, headers=error.headers)
    if error.close:
        response.force_close()
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return problem(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return problem(ApiError(exc.status, exc.reason, headers=headers))
    except StreamGone:  # deleted while the request waited for the stream's operations
        return problem(ApiError(404, "no such data stream"))
    except LogError as exc:
        _log.warning("the store failed", method=request.method, path=request.path, error=str(exc))
        return problem(ApiError(503, f"{exc}; try again", headers={"Retry-After": "2"}))
    except ConnectionResetError:  # the client went away mid-request: nobody reads an answer
        _log.debug("client went away", method=request.method, path=request.path)
        return problem(ApiError(400, "the connection closed before the request was read"))
    except Exception:
        _log.exception("request failed", method=request.method, path=request.path)
        return problem(ApiError(500, "internal error; see the service log", "internal_error"))
