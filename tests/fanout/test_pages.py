"""Rendering of stored records for a stream (``render_payload``)."""

from __future__ import annotations

import orjson

from connectors.base import Form, Rendering
from schemas import Kind, Version, dumps, parse_record
from streamer.fanout.pages import render_payload
from tests.schemas.samples import EVENT


def test_an_integer_beyond_64_bits_is_rendered_exactly_in_every_version() -> None:
    record = parse_record({**EVENT, "detail": {"counter": 10**30}}, Kind.EVENT)
    stored = dumps(record, Kind.EVENT, Version.NEW)
    renderings = [Rendering(version) for version in Version]  # the legacy CSV has no detail
    for rendering in [*renderings, Rendering(Version.NEW, form=Form.CSV)]:
        assert b"1" + b"0" * 30 in render_payload(Kind.EVENT, stored, rendering), rendering
    migrated = render_payload(Kind.EVENT, stored, Rendering(Version.MIGRATED))
    assert orjson.loads(migrated.replace(b"1" + b"0" * 30, b"1"))["detail"] == {"counter": 1}
