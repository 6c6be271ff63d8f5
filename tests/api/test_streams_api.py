"""Streams through the v2 and legacy v1 APIs (API.md §3–§4), over real HTTP.

Bodies come from the platform's documentation (the Datadog and Kinesis v2 examples, the v1 S3
and Kinesis bodies) or are built from API.md's field lists. Every connection type has a
connector; AWS streams are created against moto-free settings (creating one assumes no role:
the role is assumed at the first send). Datadog and KeenIO are pointed at a closed loopback
port (or a local receiver) by the suite's settings: nothing leaves the host.
"""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from streamer.api.legacy import v2_body
from streamer.api.services import SERVICES
from streamer.api.streams import validate_spec
from streamer.logs import mask_secrets
from streamer.spec import Ref, masked
from tests.api.conftest import StartService
from tests.api.harness import (
    ADMIN,
    Answer,
    Service,
    delivered,
    delivered_ids,
    event,
    until,
    usage,
    webhook,
)
from tests.receivers import Receiver, Reply, eventually

RECEIVER = "http://127.0.0.1:9/hook"  # replaced by the live receiver's URL where one is used


async def create(service: Service, body: dict[str, Any], token: str, *, v1: bool = False) -> int:
    """Create the stream and return its id from the ``Location`` header."""
    api = "v1" if v1 else "v2"
    answer = await service.call("POST", f"/api/{api}/data_stream", token, json=body)
    assert answer.status == 201, answer.text
    assert answer.text == ""
    location = answer.headers["Location"]
    assert re.fullmatch(rf"/api/{api}/data_stream/\d+", location), location
    return int(location.rsplit("/", 1)[1])


# --- the documented bodies, and what each becomes ------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/bucket-role-name"
DOCUMENTED_ROLE = "arn:aws:iam:1234567890:role/role_for_kinesis_data_stream"
"""The documentation's Kinesis example ARN: one colon and ten digits where AWS has two colons
and a 12-digit account; AWS would refuse it, so the service refuses it at create time."""
KINESIS_ROLE = "arn:aws:iam::123456789012:role/kinesis-role-name"
USAGE_AND_EVENTS = {"id": 3, "description": "Usage Data & Events"}


def v2_examples(url: str) -> dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, str]]]:
    """connection type → (v2 create body, ``destination`` as GET shows it, v1 ``api_type``)."""
    return {
        "RestAPI": (
            webhook(
                url,
                organisation=None,
                name="Webhook",
                credentials={
                    "method": "PUT",
                    "headers": ["Authorization:Bearer header-secret-1", "X-Tenant:acme"],
                    "size": 50,
                },
            ),
            {
                "connection_type": "RestAPI",
                "format": "Json",
                "credentials": {
                    "url": url,
                    "method": "PUT",
                    "headers": ["Authorization:****", "X-Tenant:****"],
                    "size": 50,
                    "signing_secret": None,
                },
            },
            (6, "RestAPI (Bulk)"),
        ),
        "Datadog": (  # the documentation's example, verbatim
            {
                "data_stream_type": {"id": 2},
                "destination": {
                    "connection_type": "Datadog",
                    "credentials": {
                        "api_key": "0123456789abcdef0123456789abcdef01234567",
                        "region": "US",
                    },
                    "format": "Json",
                },
            },
            {
                "connection_type": "Datadog",
                "format": "Json",
                "credentials": {"api_key": "****", "region": "US"},
            },
            (3, "DataDog"),
        ),
        "AwsKinesis": (  # the documentation's example, with a well-formed role ARN (below)
            {
                "data_stream_type": {"id": 1},
                "name": "Production Kinesis stream",
                "destination": {
                    "connection_type": "AwsKinesis",
                    "credentials": {
                        "region": "af-south-1",
                        "stream_name": "demo-stream",
                        "role_arn": DOCUMENTED_ROLE.replace("iam:1234567890", "iam::123456789012"),
                    },
                    "format": "Json",
                },
            },
            {
                "connection_type": "AwsKinesis",
                "format": "Json",
                "credentials": {
                    "region": "af-south-1",
                    "stream_name": "demo-stream",
                    "role_arn": DOCUMENTED_ROLE.replace("iam:1234567890", "iam::123456789012"),
                },
            },
            (4, "AWS Kinesis"),
        ),
        "S3": (
            {
                "data_stream_type": {"id": 3},
                "name": "Archive",
                "destination": {
                    "connection_type": "S3",
                    "format": "Csv",
                    "credentials": {
                        "region": "eu-west-1",
                        "bucket_name": "bucket-name",
                        "role_arn": ROLE,
                        "flush_size": 500,
                        "rotate_interval": 60000,
                        "key_prefix": "streams/",
                        "compression": "gzip",
                    },
                },
            },
            {
                "connection_type": "S3",
                "format": "Csv",
                "credentials": {
                    "region": "eu-west-1",
                    "bucket_name": "bucket-name",
                    "role_arn": ROLE,
                    "flush_size": 500,
                    "rotate_interval": 60000,
                    "key_prefix": "streams/",
                    "compression": "gzip",
                },
            },
            (8, "AWS S3"),
        ),
        "KeenIO": (
            {
                "data_stream_type": {"id": 2},
                "destination": {
                    "connection_type": "KeenIO",
                    "credentials": {
                        "project_id": "5f1a0c0ffee",
                        "write_key": "keen-write-key-secret",
                        "collection_name": "events",
                    },
                },
            },
            {
                "connection_type": "KeenIO",
                "format": "Json",
                "credentials": {
                    "project_id": "5f1a0c0ffee",
                    "write_key": "****",
                    "collection_name": "events",
                    "size": 3000,
                },
            },
            (2, "keen.io"),
        ),
    }


def v1_examples(url: str) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """api_type → (v1 create body, ``destination`` as v2 GET shows it)."""
    return {
        1: (
            {
                "stream_historic_data": 0,
                "data_stream_type": {"id": 2},
                "api_type": {"id": 1},
                "api_callback": {"url": url},
                "api_username": "hookuser",
                "api_password": "hook-password-secret",
            },
            {
                "connection_type": "RestAPI",
                "format": "Json",
                "credentials": {
                    "url": url,
                    "method": "POST",
                    "headers": ["Authorization:****"],
                    "size": 1,
                    "signing_secret": None,
                },
            },
        ),
        6: (
            {"data_stream_type": {"id": 1}, "api_type": {"id": 6}, "api_callback": {"url": url}},
            {
                "connection_type": "RestAPI",
                "format": "Json",
                "credentials": {
                    "url": url,
                    "method": "POST",
                    "headers": [],
                    "size": 3000,
                    "signing_secret": None,
                },
            },
        ),
        2: (
            {
                "data_stream_type": {"id": 2},
                "api_type": {"id": 2},
                "api_username": "proj-123",
                "api_password": "keen-v1-write-secret",
                "api_parameter": "my_collection",
            },
            {
                "connection_type": "KeenIO",
                "format": "Json",
                "credentials": {
                    "project_id": "proj-123",
                    "write_key": "****",
                    "collection_name": "my_collection",
                    "size": 3000,
                },
            },
        ),
        3: (
            {
                "data_stream_type": {"id": 2},
                "api_type": {"id": 3},
                "api_username": "dd-v1-api-key-secret",
                "api_parameter": "EU",
            },
            {
                "connection_type": "Datadog",
                "format": "Json",
                "credentials": {"api_key": "****", "region": "EU"},
            },
        ),
        4: (  # the documentation's body, placeholders filled in
            {
                "stream_historic_data": 0,
                "data_stream_type": USAGE_AND_EVENTS,
                "api_type": {"description": "AWS Kinesis", "id": 4},
                "api_username": KINESIS_ROLE,
                "api_parameter": "eu-west-1/kinesis-stream-name",
            },
            {
                "connection_type": "AwsKinesis",
                "format": "Json",
                "credentials": {
                    "region": "eu-west-1",
                    "stream_name": "kinesis-stream-name",
                    "role_arn": KINESIS_ROLE,
                },
            },
        ),
        8: (  # the documentation's body, placeholders filled in
            {
                "stream_historic_data": 0,
                "data_stream_type": USAGE_AND_EVENTS,
                "api_type": {"description": "AWS S3", "id": 8},
                "api_username": ROLE,
                "api_parameter": "eu-west-1/bucket-name",
            },
            {
                "connection_type": "S3",
                "format": "Csv",
                "credentials": {
                    "region": "eu-west-1",
                    "bucket_name": "bucket-name",
                    "role_arn": ROLE,
                    "flush_size": 10000,
                    "rotate_interval": 10000,
                    "key_prefix": "",
                    "compression": "none",
                },
            },
        ),
    }


API_TYPES = {  # worded as the platform words them
    1: "RestAPI",
    2: "keen.io",
    3: "DataDog",
    4: "AWS Kinesis",
    6: "RestAPI (Bulk)",
    8: "AWS S3",
}
STREAM_TYPES = {1: "Usage Data", 2: "Event Data", 3: "Usage Data & Events"}
V1_STREAM_TYPES = {1: "Usage Data", 2: "Events", 3: "Usage Data & Events"}
SECRET_KEYS = ("api_key", "write_key")


@pytest.mark.parametrize(
    "kind",
    ["RestAPI", "Datadog", "AwsKinesis", "S3", "KeenIO"],
)
async def test_v2_stream_round_trip(service: Service, receiver: Receiver, kind: str) -> None:
    url = f"{receiver.url}/hook"
    body, destination, (api_type, api_name) = v2_examples(url)[kind]
    user = await service.token("user", 1)
    stream_id = await create(service, body, user)

    got = await service.stream(stream_id)
    type_id = body["data_stream_type"]["id"]
    assert got["id"] == stream_id
    assert got["name"] == body.get("name")
    assert got["organisation"] == {"id": 1}
    assert got["data_stream_type"] == {"id": type_id, "description": STREAM_TYPES[type_id]}
    assert got["destination"] == destination
    assert got["format_version"] == "new"
    assert got["filters"] == []
    assert got["stream_historic_data"] is False
    assert got["status"] == {"id": 4, "description": "Pending"}  # nothing delivered yet
    assert got["error"] is None
    assert set(got["stats"]) == {
        "delivered_records",
        "pending_records",
        "last_delivery_at",
        "last_result_code",
    }
    listed = (await service.call("GET", "/api/v2/data_stream", user)).body
    assert [s["id"] for s in listed] == [stream_id]

    assert got["relation_resolution"] is None
    legacy = await service.stream(stream_id, v1=True)
    assert legacy == {
        "id": stream_id,
        "active": 1,
        "running": 0,  # Pending: nothing delivered yet
        "data_stream_type": {"id": type_id, "description": V1_STREAM_TYPES[type_id]},
        "api_type": {"id": api_type, "description": api_name},
        "api_callback": url if kind == "RestAPI" else None,
        "last_result_code": None,
        "last_dispatched_timestamp": None,
        "stream_historic_data": 0,
        "last_traffic_log_id": None,
        "last_event_id": None,
    }


@pytest.mark.parametrize(
    "api_type",
    [1, 6, 2, 3, 4, 8],
)
async def test_v1_stream_round_trip(service: Service, receiver: Receiver, api_type: int) -> None:
    url = f"{receiver.url}/hook"
    body, destination = v1_examples(url)[api_type]
    user = await service.token("user", 1)
    stream_id = await create(service, body, user, v1=True)

    type_id = body["data_stream_type"]["id"]
    legacy = await service.stream(stream_id, v1=True)
    assert legacy["api_type"] == {"id": api_type, "description": API_TYPES[api_type]}
    assert legacy["api_callback"] == (url if api_type in (1, 6) else None)
    assert legacy["data_stream_type"] == {"id": type_id, "description": V1_STREAM_TYPES[type_id]}
    # Pending until its first records are delivered: active, not yet running
    assert (legacy["active"], legacy["running"], legacy["stream_historic_data"]) == (1, 0, 0)
    listed = (await service.call("GET", "/api/v1/data_stream", user)).body
    assert listed == [legacy]

    got = await service.stream(stream_id)
    assert got["destination"] == destination
    assert got["format_version"] == "migrated"
    assert got["organisation"] == {"id": 1}
    assert got["data_stream_type"]["id"] == type_id


@pytest.mark.parametrize("kind", ["RestAPI", "Datadog", "AwsKinesis", "S3", "KeenIO"])
def test_every_type_validates_and_masks(kind: str) -> None:
    """The representation layer alone: the documented v2 body and its v1 counterpart are
    valid, keep their secrets in the stored form and show them masked."""
    body, destination, (api_type, _) = v2_examples(RECEIVER)[kind]
    stored = validate_spec(body).model_dump(mode="json")
    assert masked(stored)["destination"] == destination
    for key in SECRET_KEYS:
        if key in destination["credentials"]:
            sent = body["destination"]["credentials"][key]
            assert stored["destination"]["credentials"][key] == sent

    v1_body, v1_destination = v1_examples(RECEIVER)[api_type]
    stored = validate_spec(v2_body(v1_body)).model_dump(mode="json")
    assert masked(stored)["destination"] == v1_destination
    assert stored["format_version"] == "migrated"
    credentials = stored["destination"]["credentials"]
    for key in SECRET_KEYS:
        if key in credentials:
            assert credentials[key] in (v1_body.get("api_username"), v1_body.get("api_password"))


async def test_the_documented_malformed_role_arn_is_refused_by_name(service: Service) -> None:
    body, _, _ = v2_examples(RECEIVER)["AwsKinesis"]
    credentials = {**body["destination"]["credentials"], "role_arn": DOCUMENTED_ROLE}
    body = {**body, "destination": {**body["destination"], "credentials": credentials}}
    answer = await service.call(
        "POST", "/api/v2/data_stream", json={**body, "organisation": {"id": 1}}
    )
    assert answer.is_error(422), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["destination.credentials.role_arn"]


# --- validation: 422 with every problem listed ----------------------------------------------------


def _v2(kind: str, **credentials: Any) -> dict[str, Any]:
    body, _, _ = v2_examples(RECEIVER)[kind]
    destination = body["destination"]
    return {
        **body,
        "destination": {
            **destination,
            "credentials": {**destination["credentials"], **credentials},
        },
    }


CREDENTIALS = "destination.credentials."
INVALID_V2 = {
    "RestAPI size 0": (_v2("RestAPI", size=0), {CREDENTIALS + "size"}),
    "RestAPI size 10001": (_v2("RestAPI", size=10001), {CREDENTIALS + "size"}),
    "RestAPI url and method": (
        _v2("RestAPI", url="not a url", method="GET"),
        {CREDENTIALS + "url", CREDENTIALS + "method"},
    ),
    "S3 ranges and patterns": (
        _v2("S3", flush_size=9, rotate_interval=9999, region="EU", role_arn="arn:aws:s3:::bucket"),
        {CREDENTIALS + f for f in ("flush_size", "rotate_interval", "region", "role_arn")},
    ),
    "S3 upper bounds": (
        _v2("S3", flush_size=100001, rotate_interval=900001, compression="zip"),
        {CREDENTIALS + f for f in ("flush_size", "rotate_interval", "compression")},
    ),
    "Kinesis patterns": (
        _v2("AwsKinesis", region="eu_west_1", role_arn="role/x", stream_name="bad name!"),
        {CREDENTIALS + f for f in ("region", "role_arn", "stream_name")},
    ),
    "Datadog region": (_v2("Datadog", region="US2"), {CREDENTIALS + "region"}),
    "KeenIO required": (
        {
            "data_stream_type": {"id": 2},
            "destination": {"connection_type": "KeenIO", "credentials": {"project_id": ""}},
        },
        {CREDENTIALS + f for f in ("project_id", "write_key", "collection_name")},
    ),
    "unknown connection type": (
        {
            "data_stream_type": {"id": 2},
            "destination": {"connection_type": "Ftp", "credentials": {}},
        },
        {"destination"},
    ),
    "EventHubs": (
        {
            "data_stream_type": {"id": 2},
            "destination": {"connection_type": "EventHubs", "credentials": {}},
        },
        {"destination"},
    ),
    "PubSub": (
        {
            "data_stream_type": {"id": 2},
            "destination": {"connection_type": "PubSub", "credentials": {}},
        },
        {"destination"},
    ),
    "stream type, filter, version": (
        {
            **_v2("RestAPI"),
            "data_stream_type": {"id": 4},
            "filters": [{"field": "imsi", "value": [1]}],
            "format_version": "v3",
        },
        {"data_stream_type.id", "filters.0.field", "format_version"},
    ),
    "nothing at all": ({}, {"data_stream_type", "destination"}),
}
NOT_SUPPORTED = {"EventHubs": "EventHubs is not supported", "PubSub": "PubSub is not supported"}


@pytest.mark.parametrize("case", INVALID_V2)
async def test_v2_create_lists_every_problem(service: Service, case: str) -> None:
    body, fields = INVALID_V2[case]
    answer = await service.call(
        "POST", "/api/v2/data_stream", json={**body, "organisation": {"id": 1}}
    )
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert {e["field"] for e in answer.body["errors"]} == fields
    assert all(isinstance(e["message"], str) and e["message"] for e in answer.body["errors"])
    if case in NOT_SUPPORTED:
        assert NOT_SUPPORTED[case] in answer.body["errors"][0]["message"]
    assert (await service.call("GET", "/api/v2/data_stream")).body == []


INVALID_V1: dict[str, tuple[dict[str, Any], str, set[str] | None]] = {
    "api_type 5": ({"api_type": {"id": 5}}, "not supported", None),
    "api_type 7": ({"api_type": {"id": 7}}, "not supported", None),
    "api_type 9": ({"api_type": {"id": 9}}, "api_type", None),
    "S3 parameter and role": (
        {"api_type": {"id": 8}, "api_username": "nope", "api_parameter": "eu-west-1"},
        "not valid",
        {CREDENTIALS + "role_arn", CREDENTIALS + "bucket_name"},
    ),
    "Kinesis region": (
        {"api_type": {"id": 4}, "api_username": KINESIS_ROLE, "api_parameter": "Frankfurt/s"},
        "not valid",
        {CREDENTIALS + "region"},
    ),
}


@pytest.mark.parametrize("case", INVALID_V1)
async def test_v1_create_refuses(service: Service, case: str) -> None:
    extra, message, fields = INVALID_V1[case]
    body = {"data_stream_type": {"id": 3}, "organisation": {"id": 1}, **extra}
    answer = await service.call("POST", "/api/v1/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert message in answer.body["message"]
    if fields is not None:
        assert {e["field"] for e in answer.body["errors"]} == fields
    assert (await service.call("GET", "/api/v1/data_stream")).body == []


async def test_patch_is_validated_like_create(service: Service, receiver: Receiver) -> None:
    stream_id = await service.create(webhook(f"{receiver.url}/hook"))
    before = await service.stream(stream_id)
    bad = _v2("S3", flush_size=9, rotate_interval=9999)["destination"]
    answer = await service.call(
        "PATCH",
        f"/api/v2/data_stream/{stream_id}",
        json={"destination": bad, "format_version": "v9"},
    )
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert {e["field"] for e in answer.body["errors"]} == {
        CREDENTIALS + "flush_size",
        CREDENTIALS + "rotate_interval",
        "format_version",
    }
    assert await service.stream(stream_id) == before


# --- secrets ------------------------------------------------------------------------------------


async def test_secrets_never_leave_the_service(
    start_service: StartService, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Header values, write keys, API keys, passwords, signing secrets and tokens are in no
    answer and in no log line, whatever happens to the stream; the destination gets them."""
    url = f"{receiver.url}/hook"
    signing = "whsec_" + base64.b64encode(b"signing-secret-bytes-0123456789").decode()
    secrets = [
        "header-secret-1",
        "header-secret-patched",
        signing,
        "hook-password-secret",
        "keen-write-key-secret",
        "keen-v1-write-secret",
        "0123456789abcdef0123456789abcdef01234567",
        "dd-v1-api-key-secret",
        "write-key-of-an-invalid-body",
    ]
    caplog.set_level(logging.DEBUG)
    processors = [structlog.contextvars.merge_contextvars, mask_secrets]
    with capture_logs(processors=[*processors, structlog.processors.format_exc_info]) as logs:
        async with Receiver() as sinks:  # stands in for Datadog and KeenIO
            service = await start_service(
                datadog_url=f"{sinks.url}/datadog", keenio_url=f"{sinks.url}/keen"
            )
            answers, rest = await _make_streams_with_secrets(service, url, signing, secrets)

            # deliveries that succeed, one that fails for good (400): a stream goes to Error
            receiver.script(Reply(200), Reply(400, body=b"no"))
            await service.ingest("events", [event(1), event(2)])
            await receiver.wait_for_requests(3)  # 2 RestAPI streams, one of them stops
            await eventually(lambda: any(r.reply.status == 400 for r in receiver.requests))
            await sinks.wait_for_requests(4)  # 2 Datadog streams, 2 KeenIO streams

            async def errored() -> bool:
                listed = (await service.call("GET", "/api/v2/data_stream")).body
                return any(s["status"]["id"] == 3 for s in listed if s["id"] in rest)

            await until(errored)
            ids = [s["id"] for s in (await service.call("GET", "/api/v2/data_stream")).body]
            assert len(ids) == 6
            reads = [
                "/api/v2/data_stream",
                "/api/v1/data_stream",
                "/api/v1/application_token",
                *(f"/api/{api}/data_stream/{i}" for i in ids for api in ("v1", "v2")),
            ]
            for read in reads:
                answers.append(await service.call("GET", read))
                assert answers[-1].status == 200

    by_destination = {r.headers.get("Authorization") for r in receiver.requests}
    assert "Bearer header-secret-patched" in by_destination  # kept and used, not dropped
    basic = base64.b64encode(b"hookuser:hook-password-secret").decode()
    assert f"Basic {basic}" in by_destination
    by_sinks = {r.headers.get(h) for r in sinks.requests for h in ("Authorization", "DD-API-KEY")}
    assert {"keen-write-key-secret", "keen-v1-write-secret", "dd-v1-api-key-secret"} <= by_sinks
    said = [a.text + repr(dict(a.headers)) for a in answers]
    logged = repr(logs) + caplog.text
    assert logs, "the service logged nothing: the capture is not working"
    for secret in secrets:
        assert not [text for text in said if secret in text], f"{secret!r} in an answer"
        assert secret not in logged, f"{secret!r} in the service log"


async def _make_streams_with_secrets(
    service: Service, url: str, signing: str, secrets: list[str]
) -> tuple[list[Answer], set[int]]:
    """Streams of every type that has a secret, through v2 and v1, one of them patched, and
    one refused body; return the answers and the ids of the RestAPI streams."""
    user = await service.token("user", 1)
    secrets.append(user)
    examples = v2_examples(url)
    rest_body = examples["RestAPI"][0]
    rest_body["destination"]["credentials"]["signing_secret"] = signing
    rest_body["destination"]["credentials"]["size"] = 1
    rest_body["data_stream_type"] = {"id": 2}
    invalid = _v2("KeenIO", write_key="write-key-of-an-invalid-body", size=0)
    creations = [
        *(("v2", b) for b in (rest_body, examples["KeenIO"][0], examples["Datadog"][0])),
        *(("v1", v1_examples(url)[api_type][0]) for api_type in (1, 2, 3)),
        ("v2", invalid),
    ]
    answers = [
        await service.call("POST", f"/api/{api}/data_stream", user, json=body)
        for api, body in creations
    ]
    assert [a.status for a in answers[:-1]] == [201] * 6, [a.text for a in answers]
    assert answers[-1].is_error(422)
    rest = {int(answers[i].headers["Location"].rsplit("/", 1)[1]) for i in (0, 3)}
    patched = [*rest_body["destination"]["credentials"]["headers"]]
    patched[0] = "Authorization:Bearer header-secret-patched"
    destination = {
        **rest_body["destination"],
        "credentials": {**rest_body["destination"]["credentials"], "headers": patched},
    }
    path = f"/api/v2/data_stream/{min(rest)}"
    answers.append(await service.call("PATCH", path, user, json={"destination": destination}))
    assert answers[-1].status == 202
    return answers, rest


@pytest.mark.parametrize(
    "header",
    [
        "Authorization Bearer typo-secret-value",
        ":typo-secret-value",
        "  :typo-secret-value",
    ],
)
async def test_a_malformed_header_is_refused_and_not_echoed(service: Service, header: str) -> None:
    body = _v2("RestAPI", headers=["X-Fine:ok", header])
    answer = await service.call(
        "POST", "/api/v2/data_stream", json={**body, "organisation": {"id": 1}}
    )
    assert answer.is_error(422), answer.text
    assert {e["field"] for e in answer.body["errors"]} == {CREDENTIALS + "headers"}
    assert "typo-secret-value" not in answer.text


_LOG_AN_ERROR = """
import sys
import structlog
from streamer.logs import configure_logging

configure_logging("info", sys.argv[1])

def handler(token: str) -> None:
    header = "Bearer " + token
    raise RuntimeError("a handler failed")

try:
    handler(sys.argv[2])
except RuntimeError:
    structlog.get_logger("streamer.api").exception("request failed", method="POST")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_an_internal_error_logs_no_token(fmt: str) -> None:
    """The service's log configuration renders a failed request's traceback (as
    ``error_middleware`` logs it) without local variables: the bearer token the auth
    middleware holds stays out of the log. structlog's default console renderer, with rich
    installed, would print every frame's locals."""
    token = "st_" + base64.urlsafe_b64encode(bytes(range(32))).decode()
    done = subprocess.run(
        [sys.executable, "-c", _LOG_AN_ERROR, fmt, token],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "a handler failed" in done.stderr
    assert token not in done.stderr + done.stdout


# --- robustness: malformed input is a 4xx, never a 500 -------------------------------------------

MALFORMED = {
    "v2 connection_type object": (
        "POST",
        "/api/v2/data_stream",
        {"data_stream_type": {"id": 2}, "destination": {"connection_type": {}, "credentials": {}}},
        "streamer/spec.py StreamSpec._supported: `kind not in CONNECTION_TYPES` raises TypeError"
        " for an unhashable connection_type",
    ),
    "v2 connection_type array": (
        "POST",
        "/api/v2/data_stream",
        {"data_stream_type": {"id": 2}, "destination": {"connection_type": [], "credentials": {}}},
        "streamer/spec.py StreamSpec._supported: TypeError for an unhashable connection_type",
    ),
    "v2 patch connection_type object": (
        "PATCH",
        "/api/v2/data_stream/{stream}",
        {"destination": {"connection_type": {}, "credentials": {}}},
        "streamer/spec.py StreamSpec._supported: TypeError for an unhashable connection_type",
    ),
    "v1 api_type string": (
        "POST",
        "/api/v1/data_stream",
        {"data_stream_type": {"id": 2}, "api_type": "RestAPI"},
        "streamer/api/legacy.py v2_body: `(body.get('api_type') or {}).get('id')` on a non-object",
    ),
    "v1 api_type.id object": (
        "POST",
        "/api/v1/data_stream",
        {"data_stream_type": {"id": 2}, "api_type": {"id": {}}},
        "streamer/api/legacy.py v2_body: `kind not in API_TYPES` raises TypeError (unhashable)",
    ),
    "v1 data_stream_type string": (
        "POST",
        "/api/v1/data_stream",
        {
            "data_stream_type": "events",
            "api_type": {"id": 6},
            "api_callback": {"url": RECEIVER},
            "organisation": {"id": 1},
        },
        "streamer/api/legacy.py v2_body: `.get('id')` on a non-object data_stream_type",
    ),
    "v1 api_type.id true": (
        "POST",
        "/api/v1/data_stream",
        {
            "data_stream_type": {"id": 2},
            "api_type": {"id": True},
            "api_callback": {"url": RECEIVER},
            "organisation": {"id": 1},
        },
        "streamer/api/legacy.py v2_body: `true` is taken as api_type 1 (bool is an int)",
    ),
    "token organisation true": (
        "POST",
        "/api/v1/application_token",
        {"role": "user", "organisation": {"id": True}},
        "streamer/api/tokens.py create_token: isinstance(True, int) holds, so `true` is"
        " organisation 1",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_input_is_refused_with_422(
    service: Service, receiver: Receiver, case: str
) -> None:
    method, path, body, _ = MALFORMED[case]
    stream_id = await service.create(webhook(f"{receiver.url}/hook"))
    before = await service.stream(stream_id)
    answer = await service.call(method, path.format(stream=stream_id), json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert (await service.call("GET", "/api/v2/data_stream")).body == [before]
    assert len((await service.call("GET", "/api/v1/application_token")).body) == 1


async def test_an_out_of_range_event_type_harms_nothing(
    service: Service, receiver: Receiver
) -> None:
    stream_id = await service.create(webhook(f"{receiver.url}/hook"))
    base = f"/api/v1/data_stream/{stream_id}/filter/event_type"
    answer = await service.call("PUT", f"{base}/{2**64}")
    assert answer.status in (404, 422), answer.text
    assert (await service.call("PUT", f"{base}/1")).status == 204
    await service.ingest("events", [event(1, event_type=1)])
    assert await delivered(receiver, 1, timeout_secs=5) == {1}
    assert (await service.stream(stream_id))["filters"] == [
        {"field": "event_type_id", "value": [1]}
    ]


@pytest.mark.parametrize("who", ["organisation user", "platform admin"])
async def test_patch_cannot_move_a_stream_to_another_organisation(
    service: Service, receiver: Receiver, who: str
) -> None:
    token = await service.token("user", 1) if who == "organisation user" else ADMIN
    stream_id = await service.create(webhook(f"{receiver.url}/hook"))
    path = f"/api/v2/data_stream/{stream_id}"
    answer = await service.call("PATCH", path, token, json={"organisation": {"id": 2}})
    assert answer.status in (403, 422), answer.text
    stored = service.app[SERVICES].fanout.get(stream_id)
    assert stored is not None
    assert stored.spec.organisation == Ref(id=1)


# --- changing, pausing, filtering, restarting -----------------------------------------------------


async def test_patch_changes_are_visible(service: Service, receiver: Receiver) -> None:
    stream_id = await service.create(webhook(f"{receiver.url}/hook", name="first"))
    filters = [{"field": "event_type_id", "value": [1, 2]}]
    change = {
        "name": "second",
        "filters": filters,
        "format_version": "old",
        "destination": webhook(f"{receiver.url}/moved")["destination"],
    }
    path = f"/api/v2/data_stream/{stream_id}"
    answer = await service.call("PATCH", path, json=change)
    assert (answer.status, answer.text) == (202, "")

    got = await service.stream(stream_id)
    assert (got["name"], got["filters"], got["format_version"]) == ("second", filters, "old")
    assert got["destination"]["credentials"]["url"] == f"{receiver.url}/moved"
    assert (await service.stream(stream_id, v1=True))["api_callback"] == f"{receiver.url}/moved"

    assert (await service.call("PATCH", path, json={"status": {"id": 2}})).status == 202
    assert (await service.stream(stream_id))["status"] == {"id": 2, "description": "Paused"}
    legacy = await service.stream(stream_id, v1=True)
    assert (legacy["active"], legacy["running"]) == (0, 0)
    assert (await service.call("PATCH", path, json={"status": {"id": 1}})).status == 202
    assert (await service.stream(stream_id))["status"] == {"id": 1, "description": "Running"}

    for bad in ({"status": {"id": 3}}, {"status": "paused"}):
        assert (await service.call("PATCH", path, json=bad)).is_error(422)


async def test_an_alert_filter_reads_back_as_given(service: Service, receiver: Receiver) -> None:
    filters = [{"field": "alert", "value": [True]}]
    stream_id = await service.create(webhook(f"{receiver.url}/hook", filters=filters))
    shown = (await service.stream(stream_id))["filters"]
    assert shown == filters
    assert all(v is True for v in shown[0]["value"])


async def test_a_paused_stream_collects_and_delivers_on_resume(
    service: Service, receiver: Receiver
) -> None:
    paused = await service.create(webhook(f"{receiver.url}/paused", credentials={"size": 7}))
    await service.create(webhook(f"{receiver.url}/control"))
    path = f"/api/v2/data_stream/{paused}"
    assert (await service.call("PATCH", path, json={"status": {"id": 2}})).status == 202

    await service.ingest("events", [event(i) for i in range(1, 21)])
    assert await delivered(receiver, 20, "/control") == set(range(1, 21))
    assert delivered_ids(receiver, "/paused") == []
    got = await service.stream(paused)
    assert got["status"]["id"] == 2
    assert got["stats"]["pending_records"] >= 20

    assert (await service.call("PATCH", path, json={"status": {"id": 1}})).status == 202
    assert await delivered(receiver, 20, "/paused") == set(range(1, 21))
    assert all(len(r.json()) <= 7 for r in receiver.requests if r.path == "/paused")

    async def counted() -> bool:
        return bool((await service.stream(paused))["stats"]["delivered_records"] == 20)

    await until(counted)


FILTERED = {
    "/types": (2, [{"field": "event_type_id", "value": [1, 2]}]),
    "/alerts": (2, [{"field": "alert", "value": [True]}]),
    "/both": (2, [{"field": "event_type_id", "value": [2]}, {"field": "alert", "value": [True]}]),
    "/usage-too": (3, [{"field": "event_type_id", "value": [3]}]),
}


def _matches(path: str, record: dict[str, Any]) -> bool:
    if record["organisation"]["id"] != 1:
        return False
    if "event_type" not in record:  # usage: filters apply to events only
        return path == "/usage-too"
    event_type, alert = record["event_type"]["id"], record["alert"]
    matching = {
        "/types": event_type in (1, 2),
        "/alerts": alert is True,
        "/both": event_type == 2 and alert is True,
        "/usage-too": event_type == 3,
    }
    return bool(matching[path])


async def test_filters_deliver_exactly_the_matching_events(
    service: Service, receiver: Receiver
) -> None:
    for path, (type_id, filters) in FILTERED.items():
        await service.create(webhook(f"{receiver.url}{path}", type_id=type_id, filters=filters))
    events = [
        event(
            100 * organisation + 10 * event_type + alert,
            organisation=organisation,
            event_type=event_type,
            alert=bool(alert),
        )
        for organisation in (2, 1)
        for event_type in (1, 2, 3, 4)
        for alert in (0, 1)
    ]
    usages = [usage(1000 + organisation, organisation=organisation) for organisation in (2, 1)]
    await service.ingest("events", events)
    await service.ingest("usage", usages)

    for path in FILTERED:
        expected = [r["id"] for r in [*events, *usages] if _matches(path, r)]
        assert expected, path
        assert await delivered(receiver, expected[-1], path) == set(expected), path


async def test_v1_event_type_filter_changes_what_is_delivered(
    service: Service, receiver: Receiver
) -> None:
    user = await service.token("user", 1)
    callback = {"url": f"{receiver.url}/legacy"}
    body = {"data_stream_type": {"id": 2}, "api_type": {"id": 6}, "api_callback": callback}
    stream_id = await create(service, body, user, v1=True)
    base = f"/api/v1/data_stream/{stream_id}/filter/event_type"

    async def chosen() -> Any:
        answer = await service.call("GET", base, user)
        assert answer.status == 200
        return answer.body

    async def step(change: tuple[str, int] | None, records: list[tuple[int, int]]) -> set[int]:
        """Apply the filter change, ingest (id, event type) events, return what arrived."""
        if change is not None:
            answer = await service.call(change[0], f"{base}/{change[1]}", user)
            assert (answer.status, answer.text) == (204, ""), answer.text
        before = set(delivered_ids(receiver))
        await service.ingest("events", [event(i, event_type=t) for i, t in records])
        arrived = await delivered(receiver, records[-1][0]) - before
        # acknowledged too: a filter change before the stream moved its position would send
        # the batch again, filtered anew
        total = len(before | arrived)

        async def acknowledged() -> bool:
            return bool((await service.stream(stream_id))["stats"]["delivered_records"] == total)

        await until(acknowledged)
        return arrived

    assert await chosen() == []
    assert await step(("PUT", 1), [(1, 1), (2, 2), (3, 1)]) == {1, 3}
    assert await chosen() == [{"id": 1, "description": "Update location"}]
    assert (await service.stream(stream_id))["filters"] == [
        {"field": "event_type_id", "value": [1]}
    ]
    assert await step(("PUT", 2), [(4, 3), (5, 2)]) == {5}
    assert await step(("DELETE", 1), [(6, 1), (7, 2)]) == {7}
    assert await chosen() == [{"id": 2, "description": "Update GPRS location"}]
    assert await step(("DELETE", 2), [(8, 3), (9, 1)]) == {8, 9}
    assert await chosen() == []
    assert (await service.stream(stream_id))["filters"] == []
    missing = await service.call("DELETE", f"{base}/2", user)
    assert missing.is_error(404, "not_found")


async def test_restart(service: Service, receiver: Receiver) -> None:
    stream_id = await service.create(webhook(f"{receiver.url}/hook"))
    path = f"/api/v2/data_stream/{stream_id}"

    assert (await service.call("PATCH", path, json={"status": {"id": 2}})).status == 202
    answer = await service.call("POST", f"{path}/restart")
    assert answer.is_error(409, "conflict"), answer.text
    assert (await service.stream(stream_id))["status"]["id"] == 2
    assert (await service.call("PATCH", path, json={"status": {"id": 1}})).status == 202

    # out of Error: the refused record is sent again, from the last acknowledged position
    receiver.script(Reply(400, body=b"refused"))
    await service.ingest("events", [event(1)])

    async def status_is(wanted: int) -> bool:
        return bool((await service.stream(stream_id))["status"]["id"] == wanted)

    await until(lambda: status_is(3))
    failed = await service.stream(stream_id)
    assert failed["error"]["http_status"] == 400
    assert failed["stats"]["last_result_code"] == 400
    answer = await service.call("POST", f"{path}/restart")
    assert (answer.status, answer.text) == (202, "")
    assert await delivered(receiver, 1) == {1}
    assert [r.reply.status for r in receiver.requests] == [400, 200]
    await until(lambda: status_is(1))
    assert (await service.stream(stream_id))["error"] is None

    # a running stream restarts too
    assert (await service.call("POST", f"{path}/restart")).status == 202


# --- locations, deletes, lookups ------------------------------------------------------------------


@pytest.mark.parametrize(("api", "deleted"), [("v1", 204), ("v2", 202)])
async def test_create_location_and_delete(
    service: Service, receiver: Receiver, api: str, deleted: int
) -> None:
    if api == "v1":
        body = v1_examples(f"{receiver.url}/hook")[6][0]
        body["organisation"] = {"id": 1}
    else:
        body = webhook(f"{receiver.url}/hook")
    answer = await service.call("POST", f"/api/{api}/data_stream", json=body)
    assert answer.status == 201
    location = answer.headers["Location"]
    stream_id = int(location.rsplit("/", 1)[1])
    assert location == f"/api/{api}/data_stream/{stream_id}"
    assert (await service.call("GET", location)).status == 200

    answer = await service.call("DELETE", location)
    assert (answer.status, answer.text) == (deleted, "")
    for other in ("v1", "v2"):
        gone = await service.call("GET", f"/api/{other}/data_stream/{stream_id}")
        assert gone.is_error(404, "not_found")
        assert (await service.call("GET", f"/api/{other}/data_stream")).body == []
    assert (await service.call("DELETE", location)).is_error(404, "not_found")


LOOKUPS = {
    "status": [
        {"id": 1, "description": "Running"},
        {"id": 2, "description": "Paused"},
        {"id": 3, "description": "Error"},
        {"id": 4, "description": "Pending"},
    ],
    "type": [{"id": k, "description": v} for k, v in STREAM_TYPES.items()],
    "connection_type": [
        {"id": "RestAPI", "description": "Webhook"},
        {"id": "AwsKinesis", "description": "AWS Kinesis"},
        {"id": "S3", "description": "AWS S3"},
        {"id": "KeenIO", "description": "KeenIO"},
        {"id": "Datadog", "description": "Datadog"},
    ],
    "filter_field_type": [
        {"id": "event_type_id", "description": "Event type id"},
        {"id": "alert", "description": "Alert flag"},
    ],
}


@pytest.mark.parametrize("table", LOOKUPS)
async def test_lookups(service: Service, table: str) -> None:
    observer = await service.token("observer", 1)
    answer = await service.call("GET", f"/api/v2/data_stream/{table}", observer)
    assert answer.status == 200
    assert answer.body == LOOKUPS[table]
