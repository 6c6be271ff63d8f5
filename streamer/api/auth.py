"""Bearer-token authentication on every ``/api/`` route; the principal lands on the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from streamer import auth_token
from streamer.api.errors import ApiError
from streamer.api.services import SERVICES
from streamer.auth import Principal

__all__ = ["PRINCIPAL", "auth_middleware", "principal", "require"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", Principal)
_OPEN = ("/api/openapi.json", "/api/v1/authenticate")  # the login itself needs no token


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path in _OPEN:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "basic":
        raise ApiError(
            401,
            "username and password authentication is not offered: "
            "send 'Authorization: Bearer <application token>'",
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "an application token is required: 'Authorization: Bearer <token>'")
    token = token.strip()
    services = request.app[SERVICES]
    if token.startswith(auth_token.PREFIX):  # from POST /api/v1/authenticate
        found = await auth_token.check(services.store, token)
    else:
        found = await services.tokens.check(token)
    if found is None:
        raise ApiError(401, "the application token is unknown or revoked")
    request[PRINCIPAL] = found
    return await handler(request)


def principal(request: web.Request) -> Principal:
    found: Principal = request[PRINCIPAL]
    return found


def require(request: web.Request, *roles: str) -> Principal:
    """The request's principal, if its role is one of ``roles``; 403 otherwise."""
    found = principal(request)
    if not found.may(*roles):
        raise ApiError(403, f"the token's role {found.role!r} may not do this")
    return found
