"""``/api/v1/api_callback``: the legacy API's callback URLs (``streamer.callbacks``).

``GET`` lists the organisation's callbacks as ``{id, url}``; ``POST {"url": …}`` (a platform
token adds ``organisation {id}``) answers 201 with ``Location``; ``GET``/``DELETE …/{id}``.
The URL is checked by the same rule as a webhook's (``RestApiCredentials``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streamer.api.auth import require
from streamer.api.errors import ApiError
from streamer.api.streams import READ, WRITE, json_body, stream_organisation
from streamer.auth import Principal
from streamer.callbacks import ApiCallback, ApiCallbacks
from streamer.spec import Ref, RestApiCredentials

__all__ = ["CALLBACKS", "find_callback", "routes"]

CALLBACKS = web.AppKey("api_callbacks", ApiCallbacks)


def _item(callback: ApiCallback) -> dict[str, Any]:
    return {"id": callback.id, "url": callback.url}


async def find_callback(
    request: web.Request, principal: Principal, callback_id: object, missing: int = 404
) -> ApiCallback:
    """The principal's callback ``callback_id``; ``missing`` (an HTTP status) for an unknown
    one or another organisation's."""
    callbacks = request.app[CALLBACKS]
    found = await callbacks.get(callback_id) if isinstance(callback_id, int) else None
    if found is None or not principal.sees(found.organisation):
        raise ApiError(missing, f"no such api_callback: {callback_id}")
    return found


async def list_callbacks(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    callbacks = await request.app[CALLBACKS].list()
    return web.json_response([_item(c) for c in callbacks if principal.sees(c.organisation)])


async def get_callback(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    return web.json_response(_item(await find_callback(request, principal, _ident(request))))


async def create_callback(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    body = await json_body(request)
    named = body.get("organisation")
    if named is not None:
        try:
            named = Ref.model_validate(named).model_dump()
        except ValidationError:
            raise ApiError(422, "organisation must be {'id': <organisation id>}") from None
    try:
        url = str(RestApiCredentials.model_validate({"url": body.get("url")}).url)
    except ValidationError:
        raise ApiError(
            422, "url must be an http(s) URL", errors=[{"field": "url", "message": "not a URL"}]
        ) from None
    organisation = stream_organisation(principal, None if named is None else named["id"])
    callback = await request.app[CALLBACKS].add(organisation, url)
    location = f"/api/v1/api_callback/{callback.id}"
    return web.json_response(_item(callback), status=201, headers={"Location": location})


async def delete_callback(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    callback = await find_callback(request, principal, _ident(request))
    await request.app[CALLBACKS].delete(callback.id)
    return web.Response(status=204)


def _ident(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "no such api_callback") from None


routes = [
    web.get("/api/v1/api_callback", list_callbacks),
    web.post("/api/v1/api_callback", create_callback),
    web.get("/api/v1/api_callback/{id}", get_callback),
    web.delete("/api/v1/api_callback/{id}", delete_callback),
]
