"""The OpenAPI document describes exactly the routes the application serves."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from schemas import Kind, Version, json_schema
from streamer.api.openapi import document
from streamer.app import create_app
from streamer.config import Settings


async def test_every_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    app = await create_app(Settings(data_dir=tmp_path))
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        served.add((path, route.method.lower()))
    documented = {
        (path, method) for path, operations in document()["paths"].items() for method in operations
    }
    assert served == documented


def test_the_document_is_valid_json_schema_throughout() -> None:
    schemas = document()["components"]["schemas"]
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    assert document()["openapi"].startswith("3.1")


def test_ingest_bodies_are_the_record_schemas_one_or_many() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    for kind, name in (("events", "Event"), ("usage", "Usage")):
        body = doc["paths"][f"/api/v1/ingest/{kind}"]["post"]["requestBody"]["content"]
        record = {"$ref": f"#/components/schemas/{name}"}
        assert body["application/json"]["schema"]["anyOf"] == [
            record,
            {"type": "array", "items": record},
        ]
        assert "application/x-ndjson" in body
        versions = [ref["$ref"].rsplit("/", 1)[1] for ref in schemas[name]["anyOf"]]
        assert versions == [f"{name}Old", f"{name}Migrated", f"{name}New"]
    assert schemas["EventNew"]["properties"]["id"] == {"$ref": "#/components/schemas/EventNew.id"}
    assert "$defs" not in str(doc)


def test_the_record_components_judge_a_record_as_its_own_schema_does() -> None:
    """The references resolve inside the document and keep their meaning: a new-format event
    is an ``EventNew`` and an ``Event``, not an ``EventOld``, as by ``schemas/json``."""
    registry = Registry().with_resource("urn:doc", DRAFT202012.create_resource(document()))
    for name, expected in (("EventNew", True), ("Event", True), ("EventOld", False)):
        validator = Draft202012Validator(
            {"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry
        )
        assert validator.is_valid(_EVENT_NEW) is expected, name
    assert Draft202012Validator(json_schema(Kind.EVENT, Version.NEW)).is_valid(_EVENT_NEW)
    assert not Draft202012Validator(json_schema(Kind.EVENT, Version.OLD)).is_valid(_EVENT_NEW)


_EVENT_NEW = {
    "id": 1,
    "timestamp": "2024-02-29T08:59:19Z",
    "event_type": {"id": 1, "description": "Update location"},
    "event_severity": {"id": 0, "description": "Info"},
    "event_source": {"id": 0, "description": "Network"},
    "organisation": {"id": 7, "name": "Org"},
    "alert": False,
    "description": "moved",
    "endpoint": None,
    "sim": None,
    "imsi": None,
    "user": None,
    "detail": None,
}
