"""The OpenAPI 3.1 document of the whole HTTP API, served at ``/api/openapi.json``.

Request bodies of data streams come from the pydantic models that validate them, so the
document cannot drift from the validation; a test checks that every route of the application
is described here and nothing else is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from streamer.api.streams import LOOKUPS
from streamer.spec import StreamSpec

__all__ = ["document", "routes"]

Schema = dict[str, Any]

_ERROR: Schema = {
    "type": "object",
    "required": ["error_code", "error_token", "message"],
    "properties": {
        "error_code": {"type": "integer"},
        "error_token": {"type": "string"},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_REF = "#/components/schemas/{model}"
_ID_STATUS = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_STREAM: Schema = {
    "type": "object",
    "required": [
        "id",
        "organisation",
        "data_stream_type",
        "destination",
        "format_version",
        "status",
        "stats",
        "created_at",
    ],
    "properties": {
        "id": {"type": "integer"},
        "name": _NULLABLE_TEXT,
        "organisation": _ID_STATUS,
        "data_stream_type": {"type": "object"},
        "destination": {"type": "object"},
        "format_version": {"enum": ["old", "migrated", "new"]},
        "filters": {"type": "array"},
        "stream_historic_data": {"type": "boolean"},
        "relation_resolution": {},
        "status": {"type": "object"},
        "error": {"type": ["object", "null"]},
        "stats": {"type": "object"},
        "created_at": {"type": "string"},
    },
}
_V1_ITEM: Schema = {
    "type": "object",
    "required": ["id", "active", "running", "data_stream_type", "api_type"],
    "properties": {
        "id": {"type": "integer"},
        "active": {"enum": [0, 1]},
        "running": {"enum": [0, 1]},
        "data_stream_type": {"type": "object"},
        "api_type": {"type": "object"},
        "api_callback": _NULLABLE_TEXT,
        "last_result_code": {"type": ["integer", "null"]},
        "last_dispatched_timestamp": _NULLABLE_TEXT,
        "stream_historic_data": {"enum": [0, 1]},
        "last_traffic_log_id": {"type": ["integer", "null"]},
        "last_event_id": {"type": ["integer", "null"]},
    },
}
_V1_CREATE: Schema = {
    "type": "object",
    "required": ["data_stream_type", "api_type"],
    "properties": {
        "stream_historic_data": {"enum": [0, 1]},
        "data_stream_type": _ID_STATUS,
        "api_type": _ID_STATUS,
        "api_callback": {
            "type": "object",
            "properties": {"url": {"type": "string"}, "id": {"type": "integer"}},
        },
        "api_username": {"type": "string"},
        "api_password": {"type": "string"},
        "api_parameter": {"type": "string"},
        "organisation": _ID_STATUS,
    },
}
_CALLBACK: Schema = {
    "type": "object",
    "required": ["id", "url"],
    "properties": {"id": {"type": "integer"}, "url": {"type": "string"}},
}
_CALLBACK_CREATE: Schema = {
    "type": "object",
    "required": ["url"],
    "properties": {"url": {"type": "string"}, "organisation": _ID_STATUS},
}
_AUTHENTICATE: Schema = {
    "type": "object",
    "properties": {
        "application_token": {"type": "string"},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
}
_TOKEN_CREATE: Schema = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["observer", "user", "admin", "ingest"]},
        "organisation": _ID_STATUS,
        "name": {"type": "string", "maxLength": 200},
    },
}
_TOKEN: Schema = {
    "type": "object",
    "required": ["id", "role", "organisation", "name", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "role": {"type": "string"},
        "organisation": {"type": ["object", "null"]},
        "name": {"type": "string"},
        "created_at": {"type": "string"},
    },
}
_PATCH: Schema = {
    "type": "object",
    "properties": {
        "name": _NULLABLE_TEXT,
        "data_stream_type": _ID_STATUS,
        "destination": {"type": "object"},
        "filters": {"type": "array"},
        "relation_resolution": {},
        "format_version": {"enum": ["old", "migrated", "new"]},
        "status": {"type": "object", "properties": {"id": {"enum": [1, 2]}}},
    },
}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _located(operation: Schema, api: str) -> Schema:
    """``operation`` with its 201 answer's ``Location`` header: where the new stream is."""
    operation["responses"]["201"]["headers"] = {
        "Location": {
            "description": "the new stream",
            "required": True,
            "schema": {"type": "string", "pattern": f"^/api/{api}/data_stream/[0-9]+$"},
        }
    }
    return operation


def _op(
    summary: str,
    answers: dict[int, Schema | None],
    *,
    body: Schema | None = None,
    params: tuple[str, ...] = (),
    auth: bool = True,
    fails: tuple[int, ...] = (),
) -> Schema:
    """One operation: its success answers (with a schema or without a body) and the error
    statuses it may give, every one with the common error body."""
    operation: Schema = {"summary": summary, "responses": {}}
    for status, schema in answers.items():
        response: Schema = {"description": "success"}
        if schema is not None:
            response.update(_json(schema))
        operation["responses"][str(status)] = response
    errors = (*((401, 403) if auth else ()), *fails)
    for status in errors:
        operation["responses"][str(status)] = {
            "description": "error",
            **_json({"$ref": "#/components/schemas/Error"}),
        }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if params:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in params
        ]
    if not auth:
        operation["security"] = []
    return operation


@cache
def document() -> Schema:
    spec_schema = StreamSpec.model_json_schema(ref_template=_REF)
    defs = spec_schema.pop("$defs", {})
    stream = {"$ref": "#/components/schemas/Stream"}
    ident = ("id",)
    records: Schema = {
        "type": "object",
        "required": ["accepted"],
        "properties": {"accepted": {"type": "integer"}},
    }
    ingest_errors = (400, 413, 415, 503)
    ingest_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": ["object", "array"]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
    ingest = {
        "post": {
            **_op("Store records; 202 once durable", {202: records}, fails=ingest_errors),
            "requestBody": ingest_body,
            "parameters": [
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": ["auto", "new", "migrated", "old"]},
                }
            ],
        }
    }
    lookup: Schema = {"type": "array", "items": {"type": "object"}}
    paths: Schema = {
        "/health/live": {"get": _op("Liveness", {200: {"type": "object"}}, auth=False)},
        "/health/ready": {
            "get": _op("Readiness", {200: {"type": "object"}, 503: None}, auth=False)
        },
        "/metrics": {"get": _op("Prometheus metrics", {200: None}, auth=False)},
        "/api/openapi.json": {"get": _op("This document", {200: {"type": "object"}}, auth=False)},
        "/api/v1/ingest/events": ingest,
        "/api/v1/ingest/usage": ingest,
        "/api/v2/data_stream": {
            "get": _op("List streams", {200: {"type": "array", "items": stream}}),
            "post": _located(
                _op(
                    "Create a stream",
                    {201: None},
                    body={"$ref": "#/components/schemas/StreamSpec"},
                    fails=(400, 422),
                ),
                "v2",
            ),
        },
        **{
            f"/api/v2/data_stream/{table}": {"get": _op(f"Lookup: {table}", {200: lookup})}
            for table in LOOKUPS
        },
        "/api/v2/data_stream/{id}": {
            "get": _op("One stream", {200: stream}, params=ident, fails=(404,)),
            "patch": _op(
                "Change or pause/resume",
                {202: None},
                body=_PATCH,
                params=ident,
                fails=(400, 404, 422),
            ),
            "delete": _op("Delete a stream", {202: None}, params=ident, fails=(404,)),
        },
        "/api/v2/data_stream/{id}/dead_letter": {
            "get": _op(
                "Records the destination refused for good",
                {200: {"type": "array", "items": {"type": "object"}}},
                params=ident,
                fails=(404,),
            )
        },
        "/api/v2/data_stream/{id}/dead_letter/replay": {
            "post": _op(
                "Send the dead letters again",
                {202: {"type": "object", "required": ["requeued"]}},
                params=ident,
                fails=(404,),
            )
        },
        "/api/v2/data_stream/{id}/restart": {
            "post": _op("Restart from Error", {202: None}, params=ident, fails=(404, 409))
        },
        "/api/v1/data_stream": {
            "get": _op("List (legacy)", {200: {"type": "array", "items": _V1_ITEM}}),
            "post": _located(
                _op("Create (legacy)", {201: None}, body=_V1_CREATE, fails=(400, 422)), "v1"
            ),
        },
        "/api/v1/data_stream/{id}": {
            "get": _op("One stream (legacy)", {200: _V1_ITEM}, params=ident, fails=(404,)),
            "delete": _op("Delete (legacy)", {204: None}, params=ident, fails=(404,)),
        },
        "/api/v1/data_stream/{id}/filter/event_type": {
            "get": _op("Event-type filter", {200: lookup}, params=ident, fails=(404,))
        },
        "/api/v1/data_stream/{id}/filter/event_type/{event_type_id}": {
            method: _op(
                f"{verb} an event type",
                {204: None},
                params=("id", "event_type_id"),
                fails=(404, 422),
            )
            for method, verb in (("put", "Add"), ("delete", "Remove"))
        },
        "/api/v1/application_token": {
            "get": _op("List tokens", {200: {"type": "array", "items": _TOKEN}}),
            "post": _op(
                "Create a token (shown once)",
                {201: {"type": "object", "required": ["id", "token"]}},
                body=_TOKEN_CREATE,
                fails=(400, 422),
            ),
        },
        "/api/v1/authenticate": {
            "post": _op(
                "Trade an application token for a short-lived auth token",
                {200: {"type": "object", "required": ["auth_token"]}},
                body=_AUTHENTICATE,
                auth=False,
                fails=(400, 401, 403, 422),
            )
        },
        "/api/v1/api_callback": {
            "get": _op("List callback URLs (legacy)", {200: {"type": "array", "items": _CALLBACK}}),
            "post": _op(
                "Add a callback URL (legacy)",
                {201: _CALLBACK},
                body=_CALLBACK_CREATE,
                fails=(400, 422),
            ),
        },
        "/api/v1/api_callback/{id}": {
            "get": _op("One callback URL (legacy)", {200: _CALLBACK}, params=ident, fails=(404,)),
            "delete": _op("Delete a callback URL", {204: None}, params=ident, fails=(404,)),
        },
        "/api/v1/application_token/{id}": {
            "delete": _op("Revoke a token", {204: None}, params=ident, fails=(404,))
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "streamer", "version": "1", "description": "Data Streamer API"},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Stream": _STREAM,
                "StreamSpec": spec_schema,
                **defs,
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


routes = [web.get("/api/openapi.json", openapi)]
