"""``/api/v1/application_token``: make, list and revoke tokens (role ``admin``).

An organisation's admin manages its own organisation's tokens only; a platform admin any, and
platform tokens. A token's secret is in the creation answer and nowhere else, ever.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streamer.api.auth import require
from streamer.api.errors import ApiError
from streamer.api.services import SERVICES
from streamer.api.streams import json_body
from streamer.auth import ROLES
from streamer.log.base import TokenRow
from streamer.spec import Ref

__all__ = ["routes"]


def _item(row: TokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "organisation": None if row.organisation is None else {"id": row.organisation},
        "name": row.name,
        "created_at": row.created_at,
    }


async def create_token(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    body = await json_body(request)
    role = body.get("role")
    if role not in ROLES:
        raise ApiError(422, f"role must be one of {', '.join(ROLES)}")
    named = body.get("organisation")
    try:
        organisation = principal.organisation if named is None else Ref.model_validate(named).id
    except ValidationError:
        raise ApiError(
            422, "organisation must be {'id': <positive 64-bit integer>} or omitted"
        ) from None
    if principal.organisation is not None and organisation != principal.organisation:
        raise ApiError(403, "an organisation's admin makes tokens for its own organisation only")
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise ApiError(422, "name must be a string of at most 200 characters")
    token_id, token = await request.app[SERVICES].tokens.create(role, organisation, name)
    return web.json_response({"id": token_id, "token": token}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    rows = await request.app[SERVICES].tokens.list()
    visible = [
        row
        for row in rows
        if principal.organisation is None or row.organisation == principal.organisation
    ]
    return web.json_response([_item(row) for row in visible])


async def revoke_token(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    tokens = request.app[SERVICES].tokens
    try:
        token_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "no such token") from None
    row = next((r for r in await tokens.list() if r.id == token_id), None)
    if row is None or (
        principal.organisation is not None and row.organisation != principal.organisation
    ):
        raise ApiError(404, "no such token")
    await tokens.revoke(token_id)
    return web.Response(status=204)


routes = [
    web.post("/api/v1/application_token", create_token),
    web.get("/api/v1/application_token", list_tokens),
    web.delete("/api/v1/application_token/{id}", revoke_token),
]
