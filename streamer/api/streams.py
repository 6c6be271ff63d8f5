"""``/api/v2/data_stream``: create, list, get, change, restart and delete data streams."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from streamer.api.auth import require
from streamer.api.errors import ApiError
from streamer.api.limits import read_body
from streamer.api.services import SERVICES, Services
from streamer.auth import Principal
from streamer.fanout.engine import StreamConflict
from streamer.log.base import Stream, StreamStatus
from streamer.spec import CONNECTION_TYPES, STREAM_TYPES, StreamSpec, masked

__all__ = [
    "PATCHABLE_SPEC",
    "READ",
    "WRITE",
    "create",
    "find_stream",
    "json_body",
    "represent",
    "routes",
    "stream_organisation",
    "validate_spec",
]

STATUSES = {
    StreamStatus.RUNNING: "Running",
    StreamStatus.PAUSED: "Paused",
    StreamStatus.ERROR: "Error",
    StreamStatus.PENDING: "Pending",
}
LOOKUPS = ("status", "type", "connection_type", "filter_field_type")
PATCHABLE_SPEC = (
    "name",
    "data_stream_type",
    "destination",
    "filters",
    "format_version",
    "relation_resolution",
)
"""The definition's fields a PATCH may change (besides ``status``, pause or resume)."""
_PATCHABLE = frozenset({*PATCHABLE_SPEC, "status"})
_UNION_TAGS = frozenset({"one", "or", "bool", "int", "str"})
READ = ("observer", "user", "admin")
WRITE = ("user", "admin")


async def represent(state: Stream, services: Services) -> dict[str, Any]:
    """The stream as GET shows it, with every secret masked. ``pending_records`` counts the
    stream's organisation's records of its kinds after its position (filters not applied)."""
    spec = masked(state.spec.model_dump(mode="json"))
    type_id = state.spec.data_stream_type.id
    position = state.position
    pending = await services.log.pending(state.organisation, state.spec.kinds, position.offset)
    return {
        "id": state.id,
        "name": spec.get("name"),
        "organisation": {"id": state.organisation},
        "data_stream_type": {"id": type_id, "description": STREAM_TYPES[type_id]},
        "destination": spec["destination"],
        "format_version": spec["format_version"],
        "filters": spec.get("filters") or [],
        "stream_historic_data": spec.get("stream_historic_data", False),
        "relation_resolution": spec.get("relation_resolution"),
        "status": {"id": state.status.value, "description": STATUSES[state.status]},
        "error": state.error,
        "stats": {
            "delivered_records": position.delivered,
            "pending_records": pending,
            "last_delivery_at": position.last_delivery_at,
            "last_result_code": position.last_result_code,
        },
        "created_at": state.created_at,
    }


async def list_streams(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    services = request.app[SERVICES]
    visible = [s for s in services.fanout.streams() if principal.sees(s.organisation)]
    return web.json_response([await represent(s, services) for s in visible], dumps=_dumps)


async def get_stream(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    services = request.app[SERVICES]
    body = await represent(find_stream(request, principal), services)
    return web.json_response(body, dumps=_dumps)


async def create_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    state = await create(request, principal, validate_spec(await json_body(request)))
    return web.Response(status=201, headers={"Location": f"/api/v2/data_stream/{state.id}"})


async def create(request: web.Request, principal: Principal, spec: StreamSpec) -> Stream:
    """Store and start a validated stream for the principal's (or the named) organisation."""
    organisation = stream_organisation(
        principal, None if spec.organisation is None else spec.organisation.id
    )
    try:
        return await request.app[SERVICES].fanout.create(organisation, spec)
    except ValueError as exc:
        errors = [{"field": "destination", "message": str(exc)}]
        raise ApiError(422, str(exc), errors=errors) from None


async def patch_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    services = request.app[SERVICES]
    state = find_stream(request, principal)
    body = await json_body(request)
    unknown = sorted(set(body) - _PATCHABLE)
    if unknown:
        raise ApiError(
            422,
            f"cannot change {', '.join(unknown)}; a PATCH changes only "
            f"{', '.join(sorted(_PATCHABLE))}",
            errors=[{"field": name, "message": "cannot be changed"} for name in unknown],
        )
    status = body.pop("status", None)
    if status is not None and (not isinstance(status, dict) or status.get("id") not in (1, 2)):
        raise ApiError(422, "status must be {'id': 1} (resume) or {'id': 2} (pause)")
    if body:

        def change(spec: StreamSpec) -> StreamSpec:
            return validate_spec({**spec.model_dump(mode="json"), **body})

        try:
            await services.fanout.update(state.id, change)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
    if status is not None and status["id"] == StreamStatus.PAUSED:
        await services.fanout.pause(state.id)
    elif status is not None and status["id"] == StreamStatus.RUNNING:
        try:
            await services.fanout.resume(state.id)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
    return web.Response(status=202)


async def restart_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    state = find_stream(request, principal)
    try:
        await request.app[SERVICES].fanout.restart(state.id)
    except StreamConflict as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return web.Response(status=202)


async def delete_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    state = find_stream(request, principal)
    await request.app[SERVICES].fanout.delete(state.id)
    return web.Response(status=202)


async def dead_letters(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    state = find_stream(request, principal)
    letters = await request.app[SERVICES].store.dead_letters(state.id)
    body = [
        {
            "offset": letter.offset,
            "reason": letter.reason,
            "at": letter.at,
            "queued": letter.queued,
            "record": orjson.Fragment(letter.body),
        }
        for letter in letters
    ]
    return web.json_response(body, dumps=_dumps)


async def replay_dead_letters(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    state = find_stream(request, principal)
    requeued = await request.app[SERVICES].fanout.replay_dead_letters(state.id)
    return web.json_response({"requeued": requeued}, status=202)


async def lookup(request: web.Request) -> web.Response:
    require(request, *READ)
    tables: dict[str, list[dict[str, Any]]] = {
        "status": [{"id": k.value, "description": v} for k, v in STATUSES.items()],
        "type": [{"id": k, "description": v} for k, v in STREAM_TYPES.items()],
        "connection_type": [{"id": k, "description": v} for k, v in CONNECTION_TYPES.items()],
        "filter_field_type": [
            {"id": "event_type_id", "description": "Event type id"},
            {"id": "alert", "description": "Alert flag"},
        ],
    }
    return web.json_response(tables[request.path.rsplit("/", 1)[1]])


def find_stream(request: web.Request, principal: Principal) -> Stream:
    try:
        stream_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "no such data stream") from None
    state = request.app[SERVICES].fanout.get(stream_id)
    if state is None or not principal.sees(state.organisation):
        raise ApiError(404, "no such data stream")
    return state


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def validate_spec(body: dict[str, Any]) -> StreamSpec:
    try:
        return StreamSpec.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"field": _field(e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ApiError(422, "the data stream is not valid", errors=errors) from None


def _field(location: tuple[int | str, ...]) -> str:
    """``destination.S3.credentials.region`` → ``destination.credentials.region``: the union's
    tag is pydantic's, not the caller's."""
    return ".".join(str(p) for p in location if p not in CONNECTION_TYPES and not _tag(p))


def _tag(part: int | str) -> bool:
    """A part of an error's location that names pydantic's union branch or validator."""
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS)


def stream_organisation(principal: Principal, named: int | None) -> int:
    """The organisation a new stream (or callback) belongs to: the one ``named`` in the body,
    which only a platform token may choose, or the token's own."""
    if principal.organisation is None:
        if named is None:
            raise ApiError(422, "a platform token must name the stream's organisation {id}")
        return int(named)
    if named is not None and named != principal.organisation:
        raise ApiError(403, "the token may only create streams of its own organisation")
    return principal.organisation


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


_ONE = "/api/v2/data_stream/{id:-?[0-9]+}"
"""A stream by its id: digits only, so that a lookup path (``…/status``) asked with another
method than GET is a known path answering 405 with ``Allow``, not a stream that is not found."""

routes = [
    web.get("/api/v2/data_stream", list_streams),
    web.post("/api/v2/data_stream", create_stream),
    *(web.get(f"/api/v2/data_stream/{table}", lookup) for table in LOOKUPS),
    web.get(_ONE, get_stream),
    web.patch(_ONE, patch_stream),
    web.post(_ONE + "/restart", restart_stream),
    web.delete(_ONE, delete_stream),
    web.get(_ONE + "/dead_letter", dead_letters),
    web.post(_ONE + "/dead_letter/replay", replay_dead_letters),
]
