"""The JSON Schema (draft 2020-12) of each kind and version in the full shape, from ``json/``."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import orjson

from schemas.kinds import Kind, Version

__all__ = ["json_schema"]


@cache
def json_schema(kind: Kind, version: Version) -> dict[str, Any]:
    """Load ``schemas/json/<kind>.<version>.schema.json``."""
    text = files("schemas").joinpath("json", f"{kind}.{version}.schema.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(text)
    return schema
