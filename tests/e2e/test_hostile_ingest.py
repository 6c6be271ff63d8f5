"""Hostile ingest bodies against the daemon: each class is a 400 ``invalid_records`` naming the
record and field, a fuzz of mutated bodies never gets a 500, and the daemon logs no traceback."""

from __future__ import annotations

import asyncio
import http.client
import os
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Kind, Version, dumps
from tests.e2e.harness import Daemon, fleet_records
from tests.schemas.hostile import HOSTILE, Hostile

GOOD = [dumps(r, Kind.EVENT, Version.NEW) for r in fleet_records(12, 4, Kind.EVENT)]

FUZZ_EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "150"))
"""Examples per fuzz run; raise it for a long run (RELIABILITY.md, "Hostile input")."""


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_record_is_a_400_naming_it(daemon: Daemon, case: Hostile) -> None:
    body = b"\n".join([GOOD[0], case.body, GOOD[1]])
    response = await daemon.ingest(Kind.EVENT, body, ndjson=True)
    assert response.status == 400, response.text
    answer = response.json()
    assert answer["error_token"] == "invalid_records"
    [error] = answer["errors"]
    assert (error["index"], error["field"]) == (1, case.field)
    assert case.message_has in error["message"]
    assert await daemon.metric("streamer_records_ingested_total", kind="event") in (None, 0)
    assert not [line for line in daemon.output if "Traceback" in line]


fragments = st.sampled_from(
    [
        b"7" * 4301,
        b"1" * 25,
        b"[" * 1100,
        b'{"a":' * 70,
        b'"\\ud800"',
        b"\xff",
        b'{"description":[]}',
        b'"balance":true,',
        b"\n",
        b",",
        b"-",
        b"1e999",
        b"NaN",
    ]
)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(GOOD), min_size=1, max_size=3))
    data = bytearray(b"[" + b",".join(lines) + b"]" if draw(st.booleans()) else b"\n".join(lines))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[at:at] = draw(fragments)
        else:
            del data[at : at + draw(st.integers(1, 30))]
    return bytes(data)


async def test_fuzzed_bodies_never_get_a_500_nor_log_a_traceback(daemon: Daemon) -> None:
    address = urlsplit(daemon.base_url)
    host, port = address.hostname, address.port
    assert host is not None
    seen: set[int] = set()

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=mutated_bodies(), kind=st.sampled_from(list(Kind)))
    def post(body: bytes, kind: Kind) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.request(
                "POST",
                f"/api/v1/ingest/{'events' if kind is Kind.EVENT else 'usage'}",
                body,
                {"Authorization": f"Bearer {daemon.token}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            answer = orjson.loads(response.read())
        finally:
            connection.close()
        seen.add(response.status)
        assert response.status in (202, 400), (response.status, answer, daemon.output[-3:])
        if response.status == 400:
            assert answer["error_token"] in ("invalid_records", "invalid_body"), answer

    await asyncio.to_thread(post)
    assert 400 in seen
    assert not [line for line in daemon.output if "Traceback" in line]
    health = await daemon.request("GET", "/health/live")
    assert health.status == 200
