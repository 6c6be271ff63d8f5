"""Every error answer is JSON: ``{"error_code", "error_token", "message"}`` (+ ``errors``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

__all__ = ["ApiError", "error_middleware", "problem"]

_log = structlog.get_logger("streamer.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TOKENS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
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
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.token = token or _TOKENS.get(status, "error")
        self.errors = errors
        self.headers = headers


def problem(error: ApiError) -> web.Response:
    body: dict[str, Any] = {
        "error_code": error.status,
        "error_token": error.token,
        "message": error.message,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    return web.json_response(body, status=error.status, headers=error.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return problem(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(ApiError(exc.status, exc.reason))
    except ConnectionResetError:  # the client went away mid-request: nobody reads an answer
        _log.debug("client went away", method=request.method, path=request.path)
        return problem(ApiError(400, "the connection closed before the request was read"))
    except Exception:
        _log.exception("request failed", method=request.method, path=request.path)
        return problem(ApiError(500, "internal error; see the service log", "internal_error"))
