"""``POST /api/v1/authenticate``: an application token in, a short-lived ``auth_token`` out.

``{"application_token": "…"}`` → 200 ``{"auth_token": "…"}`` (``streamer.auth_token``), which
the API then accepts as ``Bearer``. ``{"username", "password"}`` → 401 with the deprecation
message: the platform deprecated user credentials, and this service never offered them.
"""

from __future__ import annotations

from aiohttp import web

from streamer import auth_token
from streamer.api.errors import ApiError
from streamer.api.services import SERVICES
from streamer.api.streams import json_body

__all__ = ["routes"]

DEPRECATED = (
    "authentication with username and password is deprecated and not offered: "
    "authenticate with an application token ({'application_token': '…'})"
)


async def authenticate(request: web.Request) -> web.Response:
    body = await json_body(request)
    token = body.get("application_token")
    if token is None and ("username" in body or "password" in body):
        raise ApiError(401, DEPRECATED)
    if not isinstance(token, str) or not token:
        raise ApiError(422, "the body must hold 'application_token' (a string)")
    issued = await auth_token.issue(request.app[SERVICES].tokens, token)
    if issued is None:
        raise ApiError(401, "the application token is unknown or revoked")
    return web.json_response({"auth_token": issued})


routes = [web.post("/api/v1/authenticate", authenticate)]
