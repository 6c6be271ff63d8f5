"""The platform's clients, unchanged, against the service: its published request bodies, its
filters as its OpenAPI types them, its legacy v1 resources, and what a receiver gets
(API.md §2–4, §6; sources in ``published.py`` and below)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.api.harness import Service, until, webhook
from tests.platform.published import EVENTS, REQUEST_BODIES, USAGE
from tests.receivers import Receiver


def published(index: int | None = None) -> Any:
    """A published record (the usage record, or event ``index``), moved to organisation 6713:
    the samples come from several organisations, and a stream reads only its own one's."""
    sample = USAGE if index is None else EVENTS[index]
    record = orjson.loads(sample.text)
    record["organisation"]["id"] = 6713
    return record


async def objects_arrived(receiver: Receiver, count: int) -> list[Any]:
    await receiver.wait_for_requests(count, 10)
    return [request.json() for request in receiver.requests]


@pytest.mark.parametrize("name", list(REQUEST_BODIES))
async def test_published_request_bodies_create_streams(service: Service, name: str) -> None:
    _, path, body = REQUEST_BODIES[name]
    answer = await service.call("POST", path, json={**body, "organisation": {"id": 6713}})
    assert answer.status == 201, answer.text
    stream_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    legacy = await service.stream(stream_id, v1=True)
    assert legacy["data_stream_type"]["id"] == body["data_stream_type"]["id"]
    assert {"last_traffic_log_id", "last_event_id"} <= set(legacy)
    if "api_type" in body:
        assert legacy["api_type"] == body["api_type"]  # the platform's own wording


async def test_a_size_1_stream_posts_one_object_per_request_in_the_published_shape(
    service: Service, receiver: Receiver
) -> None:
    body = webhook(receiver.url + "/one", organisation=6713, credentials={"size": 1})
    await service.create(body)
    records = [published(0), published(1), published(2)]
    await service.ingest("events", records)

    bodies = await objects_arrived(receiver, 3)
    assert all(isinstance(b, dict) for b in bodies)
    for got, record in zip(bodies, records, strict=True):  # the new format is the published one
        assert {key: got[key] for key in record} == record
        assert all(got[key] is None for key in set(got) - set(record))  # null roots added
    assert [b["event_severity"]["description"] for b in bodies] == ["Warn", "Warn", "Info"]


async def test_a_legacy_restapi_stream_by_api_callback_id_gets_objects(
    service: Service, receiver: Receiver
) -> None:
    made = await service.call(
        "POST",
        "/api/v1/api_callback",
        json={"url": receiver.url + "/legacy", "organisation": {"id": 6713}},
    )
    assert made.status == 201, made.text
    callback = made.body
    assert made.headers["Location"] == f"/api/v1/api_callback/{callback['id']}"
    listed = (await service.call("GET", "/api/v1/api_callback")).body
    assert listed == [{"id": callback["id"], "url": receiver.url + "/legacy"}]

    body = {
        "stream_historic_data": 0,
        "data_stream_type": {"id": 2},
        "api_type": {"id": 1},
        "api_callback": {"id": callback["id"]},
        "organisation": {"id": 6713},
    }
    answer = await service.call("POST", "/api/v1/data_stream", json=body)
    assert answer.status == 201, answer.text
    stream_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    item = await service.stream(stream_id, v1=True)
    assert item["api_type"] == {"id": 1, "description": "RestAPI"}
    assert item["api_callback"] == receiver.url + "/legacy"
    assert (item["running"], item["last_event_id"]) == (0, None)  # Pending

    await service.ingest("events", [published(0), published(1)])
    bodies = await objects_arrived(receiver, 2)
    assert [b["id"] for b in bodies] == [17357540123, 543839962673704]
    assert all(isinstance(b, dict) for b in bodies)  # one object per request, not [{…}]
    assert bodies[0]["event_source"] == {"id": 1, "name": "Policy Control"}  # migrated

    async def last_ids_shown() -> bool:
        item = await service.stream(stream_id, v1=True)
        return bool(item["last_event_id"] == 543839962673704 and item["running"] == 1)

    await until(last_ids_shown)
    v2 = await service.stream(stream_id)
    assert v2["status"] == {"id": 1, "description": "Running"}

    unknown = {**body, "api_callback": {"id": callback["id"] + 1}}
    assert (await service.call("POST", "/api/v1/data_stream", json=unknown)).is_error(422)
    assert (await service.call("DELETE", f"/api/v1/api_callback/{callback['id']}")).status == 204
    assert (await service.call("GET", "/api/v1/api_callback")).body == []


async def test_an_organisation_sees_only_its_own_api_callbacks(service: Service) -> None:
    mine, theirs = await service.token("user", 1), await service.token("user", 2)
    made = await service.call(
        "POST", "/api/v1/api_callback", mine, json={"url": "https://a.example/x"}
    )
    assert made.status == 201
    assert (await service.call("GET", "/api/v1/api_callback", theirs)).body == []
    path = f"/api/v1/api_callback/{made.body['id']}"
    assert (await service.call("GET", path, theirs)).is_error(404)
    assert (await service.call("DELETE", path, theirs)).is_error(404)
    assert (await service.call("GET", path, mine)).body == made.body


# Filters as the platform's OpenAPI types them: value items as strings or numbers, alert as
# "true", a scalar for a list, and {"or": [...]} groups (its Kinesis example).
FILTERS = {
    "strings": ([{"field": "event_type_id", "value": ["18", "56"]}], {17357540123, 17357540999}),
    "scalar": ([{"field": "event_type_id", "value": 0}], {543839962673704}),
    "alert string": ([{"field": "alert", "value": ["true"]}], {17357540123, 543839962673704}),
    "or group": (
        [
            {
                "or": [
                    {"field": "event_type_id", "value": ["56"]},
                    {"field": "alert", "value": True},
                ]
            }
        ],
        {17357540123, 543839962673704, 17357540999},
    ),
    "or and a type": (
        [
            {
                "or": [
                    {"field": "event_type_id", "value": [0]},
                    {"field": "alert", "value": "false"},
                ]
            },
            {"field": "event_type_id", "value": ["56", 0]},
        ],
        {543839962673704, 17357540999},
    ),
}


async def test_filters_as_the_platform_types_them(service: Service, receiver: Receiver) -> None:
    streams = {}
    for name, (filters, _) in FILTERS.items():
        body = webhook(f"{receiver.url}/{slug(name)}", organisation=6713, filters=filters)
        streams[name] = await service.create(body)
        assert (await service.stream(streams[name]))["filters"] == filters  # returned as given
    unmatched = {**published(1), "id": 1, "alert": False, "event_type": {"id": 99}}
    await service.ingest("events", [*(published(i) for i in range(3)), unmatched])

    async def all_read() -> bool:  # every stream's position is past every record
        got = [await service.stream(stream_id) for stream_id in streams.values()]
        return all(s["stats"]["pending_records"] == 0 for s in got)

    await until(all_read)
    for name, (_, expected) in FILTERS.items():
        path = f"/{slug(name)}"
        ids = {r["id"] for q in receiver.requests if q.path == path for r in q.json()}
        assert ids == expected, name


def slug(name: str) -> str:
    return name.replace(" ", "-")


@pytest.mark.parametrize(
    "filters",
    [
        [{"field": "event_type_id", "value": ["x"]}],
        [{"field": "alert", "value": "maybe"}],
        [{"or": []}],
        [{"field": "event_type_id", "value": []}],
    ],
)
async def test_malformed_filters_are_refused(service: Service, filters: Any) -> None:
    body = webhook("https://a.example/x", filters=filters)
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422)
    assert all(e["field"].startswith("filters.0") for e in answer.body["errors"])


async def test_relation_resolution_and_a_patched_stream_type(
    service: Service, receiver: Receiver
) -> None:
    body = webhook(receiver.url + "/r", organisation=6713, relation_resolution=True)
    stream_id = await service.create(body)
    assert (await service.stream(stream_id))["relation_resolution"] is True
    path = f"/api/v2/data_stream/{stream_id}"
    change = {"data_stream_type": {"id": 1}, "relation_resolution": {"sim": "full"}}
    assert (await service.call("PATCH", path, json=change)).status == 202
    got = await service.stream(stream_id)
    assert got["data_stream_type"] == {"id": 1, "description": "Usage Data"}
    assert got["relation_resolution"] == {"sim": "full"}

    await service.ingest("events", [published(0)])
    await service.ingest("usage", [published()])
    (only,) = await objects_arrived(receiver, 1)
    assert [r["id"] for r in only] == [1234567890]  # usage now, and no event


@pytest.mark.parametrize(
    ("event_type", "description"),
    [
        (52, "Data quota enabled"),
        (56, "Data quota assigned"),
        (30, "OpenVPN authentication"),
        (67, "User switched workspaces"),
        (18, "Quota threshold reached"),
    ],
)
async def test_event_type_filters_are_described_as_the_platform_names_them(
    service: Service, event_type: int, description: str
) -> None:
    stream_id = await service.create(webhook("https://a.example/x"))
    path = f"/api/v1/data_stream/{stream_id}/filter/event_type"
    assert (await service.call("PUT", f"{path}/{event_type}")).status == 204
    assert (await service.call("GET", path)).body == [
        {"id": event_type, "description": description}
    ]
