"""The OpenAPI 3.1 document of the whole HTTP API, served at ``/api/openapi.json``.

Request bodies of data streams come from the pydantic models that validate them, so the
document cannot drift from the validation; a test checks that every route of the application
is described here and nothing else is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from schemas import Kind, Version, json_schema
from streamer.api.legacy import API_TYPES
from streamer.api.streams import LOOKUPS, PATCHABLE_SPEC
from streamer.spec import STREAM_TYPES, StreamSpec

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
_ORGANISATION = {"$ref": _REF.format(model="Ref")}
"""The model every body's ``organisation`` is validated with (a positive 64-bit id)."""
_NAMED: Schema = {
    "required": ["organisation"],
    "properties": {
        "organisation": {
            **_ORGANISATION,
            "description": "The organisation the new object belongs to. A platform token must"
            " name it; an organisation's token may leave it out (its own is used).",
        }
    },
}
"""What a create body adds to its model: the organisation, which the server needs from a
platform token (the one this document's clients are assumed to hold)."""
_URL = {"$ref": _REF.format(model="RestApiCredentials") + "/properties/url"}
"""A callback URL, validated by the Webhook destination's model."""


_CALLBACK_URL: Schema = {
    "anyOf": [
        _URL,
        {
            "type": "object",
            "required": ["url"],
            "properties": {"url": _URL, "id": {"type": "integer"}},
        },
    ]
}
"""A legacy stream's ``api_callback``: the URL, or an object holding it."""


def _ids(allowed: Any) -> Schema:
    return {"type": "object", "required": ["id"], "properties": {"id": {"enum": sorted(allowed)}}}


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


def _v1_create(defs: Schema) -> Schema:
    """A legacy create body. What ``api_username``, ``api_password`` and ``api_parameter`` hold
    depends on ``api_type`` (API.md §4); each is validated by the v2 model it becomes."""

    def field(model: str, name: str) -> Schema:
        return {"$ref": _REF.format(model=model) + f"/properties/{name}"}

    def variant(types: tuple[int, ...], required: tuple[str, ...], **fields: Schema) -> Schema:
        return {
            "required": list(required),
            "properties": {"api_type": _ids(types), **fields},
        }

    def target(model: str, name: str) -> Schema:
        """``<region>/<stream or bucket name>``, from the model's own patterns."""
        credentials = defs[model]["properties"]
        region = credentials["region"]["pattern"].strip("^$")
        return {"type": "string", "pattern": f"^{region}/{credentials[name]['pattern'][1:]}"}

    datadog_regions = defs["DatadogCredentials"]["properties"]["region"]["enum"]
    return {
        "type": "object",
        "required": ["data_stream_type", "api_type", "organisation"],
        "properties": {
            "stream_historic_data": {"enum": [0, 1]},
            "data_stream_type": _ids(STREAM_TYPES),
            "api_type": _ids(k for k in API_TYPES if k not in (5, 7)),  # 5, 7: not supported
            "api_username": {"type": "string"},
            "api_password": {"type": "string"},
            "api_parameter": {"type": "string"},
            "organisation": _NAMED["properties"]["organisation"],
        },
        "anyOf": [
            variant((1, 6), ("api_callback",), api_callback=_CALLBACK_URL),  # others ignore it
            variant(
                (2,),
                ("api_username", "api_password"),
                api_username=field("KeenIOCredentials", "project_id"),
                api_password=field("KeenIOCredentials", "write_key"),
                api_parameter={
                    "anyOf": [{"const": ""}, field("KeenIOCredentials", "collection_name")]
                },
            ),
            variant(
                (3,),
                ("api_username",),
                api_username=field("DatadogCredentials", "api_key"),
                api_parameter={"enum": ["", *datadog_regions]},
            ),
            variant(
                (4,),
                ("api_username", "api_parameter"),
                api_username=field("AwsKinesisCredentials", "role_arn"),
                api_parameter=target("AwsKinesisCredentials", "stream_name"),
            ),
            variant(
                (8,),
                ("api_username", "api_parameter"),
                api_username=field("S3Credentials", "role_arn"),
                api_parameter=target("S3Credentials", "bucket_name"),
            ),
        ],
    }


_CALLBACK: Schema = {
    "type": "object",
    "required": ["id", "url"],
    "properties": {"id": {"type": "integer"}, "url": {"type": "string"}},
}
_CALLBACK_CREATE: Schema = {
    "type": "object",
    "required": ["url", "organisation"],
    "properties": {"url": _URL, "organisation": _NAMED["properties"]["organisation"]},
}
_AUTHENTICATE: Schema = {
    "type": "object",
    "required": ["application_token"],
    "properties": {
        "application_token": {"type": "string", "minLength": 1},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
}
_TOKEN_CREATE: Schema = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["observer", "user", "admin", "ingest"]},
        "organisation": {"anyOf": [_ORGANISATION, {"type": "null"}]},  # null: the caller's
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


def _record_name(kind: Kind, version: Version) -> str:
    return f"{kind.capitalize()}{version.capitalize()}"


def _rewritten(node: Any, prefix: str) -> Any:
    """``node`` with every ``#/$defs/<name>`` reference pointing at ``<prefix><name>``."""
    if isinstance(node, dict):
        return {
            key: (
                _REF.format(model=prefix + value.removeprefix("#/$defs/"))
                if key == "$ref" and isinstance(value, str)
                else _rewritten(value, prefix)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewritten(item, prefix) for item in node]
    return node


def _record_schemas() -> Schema:
    """The record JSON Schemas (``schemas/json/``) as components: one per kind and version
    (``EventOld`` …), their ``$defs`` beside them as ``EventOld.id`` …, and ``Event`` and
    ``Usage``, a record of any version."""
    components: Schema = {}
    for kind in Kind:
        for version in Version:
            name = _record_name(kind, version)
            record = dict(json_schema(kind, version))
            for key in ("$schema", "$id"):
                record.pop(key)
            for local, schema in record.pop("$defs").items():
                components[f"{name}.{local}"] = _rewritten(schema, f"{name}.")
            components[name] = _rewritten(record, f"{name}.")
        components[kind.capitalize()] = {
            "description": f"{kind.article.capitalize()} record in any format version.",
            "anyOf": [{"$ref": _REF.format(model=_record_name(kind, v))} for v in Version],
        }
    return components


def _ingest_body(kind: Kind) -> Schema:
    """One record, or an array of them, as JSON; or NDJSON, one record a line."""
    record = {"$ref": _REF.format(model=kind.capitalize())}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [record, {"type": "array", "items": record}]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }


def _patch(spec_schema: Schema) -> Schema:
    """A PATCH body: any of the changeable fields of ``StreamSpec``, validated by its model."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{name: spec_schema["properties"][name] for name in PATCHABLE_SPEC},
            "status": _ids([1, 2]),
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


_INTEGER: Schema = {"type": "integer"}
_PATH_IDS: dict[str, Schema] = {
    "event_type_id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}
"""Path ids the server bounds (an unknown id of any integer is a 404, not described here)."""


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
            {"name": name, "in": "path", "required": True, "schema": _PATH_IDS.get(name, _INTEGER)}
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
    ingest = {
        kind: {
            "post": {
                **_op("Store records; 202 once durable", {202: records}, fails=ingest_errors),
                "requestBody": _ingest_body(kind),
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
        for kind in Kind
    }
    lookup: Schema = {"type": "array", "items": {"type": "object"}}
    paths: Schema = {
        "/health/live": {"get": _op("Liveness", {200: {"type": "object"}}, auth=False)},
        "/health/ready": {
            "get": _op("Readiness", {200: {"type": "object"}, 503: None}, auth=False)
        },
        "/metrics": {"get": _op("Prometheus metrics", {200: None}, auth=False)},
        "/api/openapi.json": {"get": _op("This document", {200: {"type": "object"}}, auth=False)},
        "/api/v1/ingest/events": ingest[Kind.EVENT],
        "/api/v1/ingest/usage": ingest[Kind.USAGE],
        "/api/v2/data_stream": {
            "get": _op("List streams", {200: {"type": "array", "items": stream}}),
            "post": _located(
                _op(
                    "Create a stream",
                    {201: None},
                    body={"allOf": [{"$ref": "#/components/schemas/StreamSpec"}, _NAMED]},
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
                body=_patch(spec_schema),
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
                _op("Create (legacy)", {201: None}, body=_v1_create(defs), fails=(400, 422)), "v1"
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
                **_record_schemas(),
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


routes = [web.get("/api/openapi.json", openapi)]
