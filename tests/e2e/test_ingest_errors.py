"""Bad ingest requests get the documented answer, store nothing, and hurt nothing (API.md §1,
§2, §5): each gets its status and the JSON error body, a stream created before sees no record
and no pending record, and the daemon goes on taking good requests."""

from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas import Kind, Version, dumps
from streamer.simulate import Fleet
from tests.e2e.harness import (
    Daemon,
    NewReceiver,
    StartDaemon,
    eventually,
    fleet_records,
    ids_of,
    json_array,
    ndjson,
)

MAX_BODY_BYTES = 16_384
EVENTS = "/api/v1/ingest/events"
USAGE = "/api/v1/ingest/usage"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
NO_TOKEN = object()


@dataclass(frozen=True)
class Bad:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    error_token: str | None = None  # None: any snake_case token
    bad_indexes: list[int] | None = None  # for invalid_records: the indexes listed
    token: Any = None  # None: the bootstrap token; NO_TOKEN: no Authorization header
    message_has: list[str] = field(default_factory=list)


_event = fleet_records(50, 40, Kind.EVENT)
_usage = fleet_records(51, 2, Kind.USAGE)
_good_lines = [dumps(r, Kind.EVENT, Version.NEW) for r in _event[:3]]
_too_big = ndjson(_event, Kind.EVENT, Version.NEW)
assert len(_too_big) > MAX_BODY_BYTES

CASES = {
    "invalid JSON": Bad(EVENTS, b'[{"id": 1, "timestamp": ', JSON, 400, "invalid_records", [0]),
    "invalid JSON on one NDJSON line": Bad(
        EVENTS,
        b"\n".join([*_good_lines[:2], b'{"id": 5,,}', _good_lines[2]]),
        NDJSON,
        400,
        "invalid_records",
        [2],
    ),
    "not a record": Bad(EVENTS, b'[{"hello": "world"}]', JSON, 400, "invalid_records", [0]),
    "a usage record at /events": Bad(
        EVENTS,
        b"[" + b",".join([*_good_lines[:2], dumps(_usage[0], Kind.USAGE, Version.NEW)]) + b"]",
        JSON,
        400,
        "invalid_records",
        [2],
    ),
    "an event at /usage": Bad(
        USAGE,
        json_array([_event[0]], Kind.EVENT, Version.OLD),
        JSON,
        400,
        "invalid_records",
        [0],
    ),
    "gzip garbage": Bad(
        EVENTS, b"this is not gzip at all", {**JSON, "Content-Encoding": "gzip"}, 400
    ),
    "a body over the limit": Bad(EVENTS, _too_big, NDJSON, 413),
    "a gzip body over the limit once inflated": Bad(
        EVENTS, gzip.compress(_too_big), {**NDJSON, "Content-Encoding": "gzip"}, 413
    ),
    "text/plain": Bad(EVENTS, b"\n".join(_good_lines), {"Content-Type": "text/plain"}, 415),
    "an unknown format": Bad(
        EVENTS + "?format=ancient", b"\n".join(_good_lines), NDJSON, 400, message_has=["format"]
    ),
    "no token": Bad(EVENTS, b"\n".join(_good_lines), NDJSON, 401, token=NO_TOKEN),
    "an unknown token": Bad(EVENTS, b"\n".join(_good_lines), NDJSON, 401, token="st_" + "x" * 43),
    "Basic auth": Bad(
        EVENTS,
        b"\n".join(_good_lines),
        {**NDJSON, "Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()},
        401,
        token=NO_TOKEN,
        message_has=["token"],
    ),
}


@pytest.fixture
async def limited(start_daemon: StartDaemon) -> Daemon:
    return await start_daemon(STREAMER_MAX_BODY_BYTES=str(MAX_BODY_BYTES))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_a_bad_ingest_request_is_refused_and_stores_nothing(
    limited: Daemon, new_receiver: NewReceiver, case: str
) -> None:
    daemon = limited
    bad = CASES[case]
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=100)
    pending_before = (await daemon.stream(stream_id))["stats"]["pending_records"]

    token = None if bad.token is NO_TOKEN else (bad.token or daemon.token)
    response = await daemon.request(
        "POST", bad.path, data=bad.body, headers=bad.headers, token=token
    )

    assert response.status == bad.status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == bad.status
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", body["error_token"]), body
    if bad.error_token is not None:
        assert body["error_token"] == bad.error_token
    assert isinstance(body["message"], str)
    assert body["message"].strip()
    for word in bad.message_has:
        assert word in body["message"], body
    if bad.bad_indexes is not None:
        errors = body["errors"]
        assert [e["index"] for e in errors] == bad.bad_indexes, errors
        assert all(isinstance(e["message"], str) and e["message"] for e in errors)

    # Nothing stored: nothing pending for the stream, nothing delivered.
    stream = await daemon.stream(stream_id)
    assert stream["stats"]["pending_records"] == pending_before
    assert stream["stats"]["delivered_records"] == 0

    # The daemon goes on: a good request is taken and is all the stream ever delivers.
    good = fleet_records(52, 5, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(good, Kind.EVENT, Version.NEW), 5, ndjson=True)
    await eventually(lambda: receiver.id_set() == set(ids_of(good)), what="the good request")
    assert sorted(receiver.ids()) == sorted(ids_of(good))
    await daemon.settled(stream_id, 5)
    assert daemon.running


async def test_an_organisations_ingest_token_may_not_store_another_organisations_records(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    """API.md §2: records of another organisation than the token's → 403, nothing stored."""
    made = await daemon.request(
        "POST",
        "/api/v1/application_token",
        json={"role": "ingest", "organisation": {"id": 2}, "name": "e2e producer"},
    )
    assert made.status == 201, made.text
    token = made.json()["token"]
    receivers = [await new_receiver(), await new_receiver()]
    streams = [
        await daemon.create_stream(receivers[0].url, organisation={"id": 1}),
        await daemon.create_stream(receivers[1].url, organisation={"id": 2}),
    ]

    fleet = Fleet(53, organisations=2)  # endpoints alternate between organisations 1 and 2
    mixed = [fleet.event() for _ in range(10)]
    assert {r["organisation"]["id"] for r in mixed} == {1, 2}
    refused = await daemon.request(
        "POST", EVENTS, data=ndjson(mixed, Kind.EVENT, Version.NEW), headers=NDJSON, token=token
    )
    assert refused.status == 403, refused.text
    assert refused.json()["error_code"] == 403
    for stream_id in streams:
        assert (await daemon.stream(stream_id))["stats"]["pending_records"] == 0

    # An ingest token reads no streams.
    assert (await daemon.request("GET", "/api/v2/data_stream", token=token)).status == 403

    own = [r for r in mixed if r["organisation"]["id"] == 2]
    taken = await daemon.request(
        "POST", EVENTS, data=ndjson(own, Kind.EVENT, Version.NEW), headers=NDJSON, token=token
    )
    assert taken.status == 202, taken.text
    await daemon.settled(streams[1], len(own))
    assert sorted(receivers[1].ids()) == sorted(ids_of(own))
    await daemon.settled(streams[0], 0)
    assert receivers[0].exchanges == []
