"""``/api/v1/data_stream``: the platform's legacy API over the same streams (API.md §4).

A legacy body is translated into a v2 stream (``format_version`` ``migrated`` by default) and
validated by the same rules; a stream made here is visible and manageable through v2, and the
other way round. ``api_type`` ↔ connection type:

    1 RestAPI (size 1)   2 KeenIO   3 Datadog   4 AWS Kinesis   6 RestAPI Bulk   8 AWS S3
    5 (deprecated) and 7 (Salesforce) are refused with 422.

Descriptions are worded as the platform words them (``keen.io``, ``DataDog``, ``RestAPI
(Bulk)``, ``Events``). A RestAPI stream names its URL by ``api_callback {url}`` or by the id of
an ``/api/v1/api_callback``. List items carry ``last_traffic_log_id`` and ``last_event_id``: the
ids of the last usage record and event delivered since the service started (``null`` before).
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from streamer.api.api_callback import find_callback
from streamer.api.auth import require
from streamer.api.errors import ApiError
from streamer.api.services import SERVICES
from streamer.api.streams import READ, WRITE, create, find_stream, json_body, validate_spec
from streamer.log.base import Stream, StreamStatus
from streamer.redact import mask_url
from streamer.spec import StreamSpec

__all__ = ["routes", "v1_item"]

API_TYPES = {
    1: "RestAPI",
    2: "keen.io",
    3: "DataDog",
    4: "AWS Kinesis",
    5: "deprecated",
    6: "RestAPI (Bulk)",
    7: "Salesforce",
    8: "AWS S3",
}
V1_STREAM_TYPES = {1: "Usage Data", 2: "Events", 3: "Usage Data & Events"}
EVENT_TYPES = {
    0: "Generic",
    1: "Update location",
    2: "Update GPRS location",
    3: "Create PDP Context",
    4: "Update PDP Context",
    5: "Delete PDP Context",
    6: "User authentication failed",
    7: "Application authentication failed",
    8: "SIM activation",
    9: "SIM suspension",
    10: "SIM deletion",
    11: "Endpoint blocked",
    12: "Organisation blocked",
    13: "Support Access",
    14: "Multi-factor Authentication",
    15: "Purge location",
    16: "Purge GPRS location",
    17: "Self-Signup",
    18: "Quota threshold reached",
    19: "Quota used up",
    20: "SMS quota threshold reached",
    21: "SMS quota used up",
    30: "OpenVPN authentication",
    31: "Organisation updated",
    32: "Billing configuration updated",
    37: "Password reset requested",
    40: "User verification requested",
    42: "Endpoint enabled",
    43: "Endpoint disabled",
    44: "SIM issued",
    45: "SIM factory test",
    48: "SIM registration",
    49: "Device offline",
    50: "SIM Released",
    51: "SIM Assigned",
    52: "Data quota enabled",
    53: "Data quota disabled",
    54: "SMS quota enabled",
    55: "SMS quota disabled",
    56: "Data quota assigned",
    57: "Data quota deleted",
    58: "SMS quota assigned",
    59: "SMS quota deleted",
    60: "Data quota expired",
    67: "User switched workspaces",
    68: "Reset connectivity",
    69: "SIM migration",
}
"""The event types the platform documents (docs.emnify.com/system-events/event-types and its
pages, FORMATS.md §3.1); an id it does not name has a null description."""


def api_type(spec: dict[str, Any]) -> int:
    destination = spec["destination"]
    kind = destination["connection_type"]
    if kind == "RestAPI":
        return 1 if destination["credentials"].get("size") == 1 else 6
    return {"KeenIO": 2, "Datadog": 3, "AwsKinesis": 4, "S3": 8}[kind]


def v1_item(state: Stream) -> dict[str, Any]:
    """A stream in the legacy shape."""
    spec = state.spec.model_dump(mode="json")
    type_id = api_type(spec)
    credentials = spec["destination"]["credentials"]
    return {
        "id": state.id,
        "active": int(state.status is not StreamStatus.PAUSED),
        "running": int(state.status is StreamStatus.RUNNING),
        "data_stream_type": {
            "id": spec["data_stream_type"]["id"],
            "description": V1_STREAM_TYPES[spec["data_stream_type"]["id"]],
        },
        "api_type": {"id": type_id, "description": API_TYPES[type_id]},
        "api_callback": mask_url(credentials.get("url")),
        "last_result_code": state.position.last_result_code,
        "last_dispatched_timestamp": state.position.last_delivery_at,
        "stream_historic_data": int(bool(spec.get("stream_historic_data"))),
        "last_traffic_log_id": state.last_usage_id,
        "last_event_id": state.last_event_id,
    }


def v2_body(body: dict[str, Any]) -> dict[str, Any]:
    """Translate a legacy create body into a v2 body (validated afterwards by the v2 rules)."""
    kind = _id_of(body, "api_type")
    if kind not in API_TYPES:
        raise ApiError(422, "api_type.id must be one of 1, 2, 3, 4, 6, 8")
    if kind in (5, 7):
        raise ApiError(422, f"api_type {kind} ({API_TYPES[kind]}) is not supported")
    historic = _checked_types(body)
    username, password = body.get("api_username"), body.get("api_password")
    parameter = body.get("api_parameter")
    destination: dict[str, Any]
    if kind in (1, 6):
        callback = body.get("api_callback")
        url = callback.get("url") if isinstance(callback, dict) else callback
        credentials: dict[str, Any] = {"url": url}
        if kind == 1:
            credentials["size"] = 1
        if username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            credentials["headers"] = [f"Authorization:Basic {basic}"]
        destination = {"connection_type": "RestAPI", "credentials": credentials}
    elif kind in (4, 8):
        region, _, target = str(parameter or "").partition("/")
        name = "stream_name" if kind == 4 else "bucket_name"
        destination = {
            "connection_type": "AwsKinesis" if kind == 4 else "S3",
            "credentials": {"region": region, name: target, "role_arn": username},
        }
    elif kind == 2:
        destination = {
            "connection_type": "KeenIO",
            "credentials": {
                "project_id": username,
                "write_key": password,
                "collection_name": parameter or "data_stream",
            },
        }
    else:
        credentials = {"api_key": username}
        if parameter:
            credentials["region"] = parameter
        destination = {"connection_type": "Datadog", "credentials": credentials}
    v2: dict[str, Any] = {
        "data_stream_type": {"id": _id_of(body, "data_stream_type")},
        "destination": destination,
        "format_version": body.get("format_version", "migrated"),
        "stream_historic_data": historic == 1,
    }
    if "organisation" in body:
        v2["organisation"] = body["organisation"]
    return v2


def _checked_types(body: dict[str, Any]) -> int:
    """Refuse credentials that are not strings; ``stream_historic_data``, 0 or 1, returned."""
    for field in ("api_username", "api_password", "api_parameter"):
        if not isinstance(body.get(field, ""), str):
            raise ApiError(422, f"{field} must be a string", errors=[_field(field, "not a string")])
    historic = body.get("stream_historic_data", 0)
    if type(historic) is not int or historic not in (0, 1):
        raise ApiError(
            422,
            "stream_historic_data must be 0 or 1",
            errors=[_field("stream_historic_data", "not 0 or 1")],
        )
    return historic


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


def _id_of(body: dict[str, Any], key: str) -> int | None:
    """``body[key]["id"]`` when it is an integer; None for anything else (422 follows)."""
    ref = body.get(key)
    ident = ref.get("id") if isinstance(ref, dict) else None
    return ident if isinstance(ident, int) and not isinstance(ident, bool) else None


async def list_streams(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    streams = request.app[SERVICES].fanout.streams()
    return web.json_response([v1_item(s) for s in streams if principal.sees(s.organisation)])


async def get_stream(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    return web.json_response(v1_item(find_stream(request, principal)))


async def create_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    body = await json_body(request)
    callback = body.get("api_callback")
    if isinstance(callback, dict) and "id" in callback and type(callback["id"]) is not int:
        raise ApiError(
            422,
            "api_callback.id must be an integer",
            errors=[_field("api_callback.id", "not an id")],
        )
    if isinstance(callback, dict) and "id" in callback and "url" not in callback:
        body["api_callback"] = {
            "url": (await find_callback(request, principal, callback["id"], 422)).url
        }
    spec = validate_spec(v2_body(body))
    state = await create(request, principal, spec)
    return web.Response(status=201, headers={"Location": f"/api/v1/data_stream/{state.id}"})


async def delete_stream(request: web.Request) -> web.Response:
    principal = require(request, *WRITE)
    state = find_stream(request, principal)
    await request.app[SERVICES].fanout.delete(state.id)
    return web.Response(status=204)


async def event_type_filter(request: web.Request) -> web.Response:
    principal = require(request, *READ)
    state = find_stream(request, principal)
    return web.json_response(
        [{"id": i, "description": EVENT_TYPES.get(i)} for i in sorted(_event_types(state))]
    )


async def add_event_type(request: web.Request) -> web.Response:
    return await _change_event_types(request, add=True)


async def remove_event_type(request: web.Request) -> web.Response:
    return await _change_event_types(request, add=False)


async def _change_event_types(request: web.Request, *, add: bool) -> web.Response:
    principal = require(request, *WRITE)
    state = find_stream(request, principal)
    try:
        event_type = int(request.match_info["event_type_id"])
    except ValueError:
        raise ApiError(404, "no such event type") from None
    if not 0 <= event_type < 2**63:
        raise ApiError(422, "an event type id is a non-negative 64-bit integer")
    if not add and event_type not in _event_types(state):
        raise ApiError(404, f"event type {event_type} is not in the stream's filter")

    def change(spec: StreamSpec) -> StreamSpec:
        chosen = set(spec.event_type_ids())
        chosen = chosen | {event_type} if add else chosen - {event_type}
        document = spec.model_dump(mode="json", by_alias=True)
        others = [f for f in document["filters"] if f.get("field") != "event_type_id"]
        filters = [*others, {"field": "event_type_id", "value": sorted(chosen)}]
        return validate_spec({**document, "filters": filters if chosen else others})

    try:
        await request.app[SERVICES].fanout.update(state.id, change)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return web.Response(status=204)


def _event_types(state: Stream) -> set[int]:
    return set(state.spec.event_type_ids())


routes = [
    web.get("/api/v1/data_stream", list_streams),
    web.post("/api/v1/data_stream", create_stream),
    web.get("/api/v1/data_stream/{id}", get_stream),
    web.delete("/api/v1/data_stream/{id}", delete_stream),
    web.get("/api/v1/data_stream/{id}/filter/event_type", event_type_filter),
    web.put("/api/v1/data_stream/{id}/filter/event_type/{event_type_id}", add_event_type),
    web.delete("/api/v1/data_stream/{id}/filter/event_type/{event_type_id}", remove_event_type),
]
