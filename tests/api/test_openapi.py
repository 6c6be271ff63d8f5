"""The OpenAPI document describes exactly the routes the application serves."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator

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
