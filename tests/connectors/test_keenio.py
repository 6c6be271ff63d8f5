"""The KeenIO connector over real HTTP on loopback (DESIGN.md §4, connectors/keenio.py).

Every request goes to a ``FakeKeen`` on 127.0.0.1 (tests/connectors/fakes.py), which speaks
Keen's batch events API: write key check, per-event results, Keen's property name rules.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from connectors.base import (
    Batch,
    DestinationMissing,
    FatalError,
    Rendering,
    RetryableError,
    SendResult,
)
from connectors.http import PrivateDestinationError
from connectors.keenio import Keen, KeenConfig
from schemas import Kind, Record, Shape, Version, dumps
from streamer.simulate import Fleet
from tests.connectors.fakes import KEEN_PROJECT, KEEN_WRITE_KEY, FakeKeen, KeenError
from tests.receivers import Receiver, Reply

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

COLLECTION = "sim_events"

MakeKeen = Callable[..., Keen]


def records(kind: Kind, count: int, seed: int = 5) -> list[Record]:
    fleet = Fleet(seed)
    return [fleet.event() if kind is Kind.EVENT else fleet.usage() for _ in range(count)]


def batch_of(kind: Kind, items: list[Record], rendering: Rendering) -> Batch:
    """The records as the engine hands them over: rendered the way the connector asked."""
    payloads = [dumps(r, kind, rendering.version, rendering.shape) for r in items]
    n = len(items)
    return Batch(f"stream-9:0-{n}", payloads, [str(kind)] * n, list(range(100, 100 + n)))


def subset(batch: Batch, positions: Sequence[int]) -> Batch:
    """What the engine sends again: only the positions a result asked to retry."""
    return Batch(
        batch.key,
        [batch.payloads[i] for i in positions],
        [batch.kinds[i] for i in positions],
        [batch.offsets[i] for i in positions],
    )


@pytest.fixture
async def keen() -> AsyncIterator[FakeKeen]:
    async with FakeKeen() as fake:
        yield fake


@pytest.fixture
async def connectors(keen: FakeKeen) -> AsyncIterator[MakeKeen]:
    """Build connectors pointed at the fake (loopback allowed) and close them all after."""
    built: list[Keen] = []

    def make(**options: Any) -> Keen:
        options = {
            "project_id": KEEN_PROJECT,
            "write_key": KEEN_WRITE_KEY,
            "collection_name": COLLECTION,
            "version": Version.NEW,
            "base_url": keen.url,
            "allow_private": True,
            **options,
        }
        connector = KeenConfig(**options).build()
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


def clean(result: SendResult) -> tuple[int | None, list[int], list[tuple[int, str]]]:
    return result.http_status, list(result.retry), list(result.rejected)


# --- what Keen receives ------------------------------------------------------------------


async def test_a_batch_is_one_request_to_the_collection_with_the_write_key(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    items = records(Kind.EVENT, 3)
    batch = batch_of(Kind.EVENT, items, connector.rendering)

    assert clean(await connector.send(batch)) == (200, [], [])
    [request] = keen.requests
    assert (request.method, request.path) == ("POST", f"/3.0/projects/{KEEN_PROJECT}/events")
    assert request.headers["Authorization"] == KEEN_WRITE_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == b'{"sim_events":[' + b",".join(batch.payloads) + b"]}"
    assert keen.stored(COLLECTION) == items


async def test_size_records_go_in_each_request(keen: FakeKeen, connectors: MakeKeen) -> None:
    connector = connectors(size=3)
    items = records(Kind.USAGE, 7)

    result = await connector.send(batch_of(Kind.USAGE, items, connector.rendering))

    assert clean(result) == (200, [], [])
    assert connector.max_batch == 3
    assert [len(r.json()[COLLECTION]) for r in keen.requests] == [3, 3, 1]
    assert keen.stored(COLLECTION) == items


# --- per-event results -------------------------------------------------------------------


async def test_only_the_events_keen_refused_are_retried_or_dead_lettered(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    items = records(Kind.EVENT, 6)
    items[1]["vendor.note"] = "Keen refuses dots in property names"  # an unknown field, kept
    keen.failing[items[4]["id"]] = KeenError("InternalServerError", "Try again later.")
    batch = batch_of(Kind.EVENT, items, connector.rendering)

    result = await connector.send(batch)

    assert list(result.retry) == [4]
    [(position, reason)] = result.rejected
    assert position == 1
    assert reason.startswith("InvalidPropertyNameError: ")
    assert "vendor.note" in reason

    keen.failing.clear()
    assert clean(await connector.send(subset(batch, result.retry))) == (200, [], [])
    stored = Counter(e["id"] for e in keen.stored(COLLECTION))
    assert stored == Counter(e["id"] for i, e in enumerate(items) if i != 1)  # each once
    assert sum(len(r.json()[COLLECTION]) for r in keen.requests) == 7  # 6, then the 1 retried


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("InvalidPropertyNameError", "rejected"),
        ("InvalidPropertyValueError", "rejected"),
        ("InvalidEventError", "rejected"),
        ("InternalServerError", "retry"),
        ("TimeoutError", "retry"),
    ],
)
async def test_validation_errors_are_dead_letters_other_failures_retried(
    keen: FakeKeen, connectors: MakeKeen, name: str, outcome: str
) -> None:
    connector = connectors()
    items = records(Kind.USAGE, 3)
    keen.failing[items[2]["id"]] = KeenError(name, "as Keen says")

    result = await connector.send(batch_of(Kind.USAGE, items, connector.rendering))

    if outcome == "rejected":
        assert clean(result) == (200, [], [(2, f"{name}: as Keen says")])
    else:
        assert clean(result) == (200, [2], [])


async def test_an_answer_without_a_result_for_an_event_retries_that_event(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    keen.script(Reply(200, json.dumps({COLLECTION: [{"success": True}]}).encode()))

    result = await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 3), connector.rendering))

    assert clean(result) == (200, [1, 2], [])


async def test_an_unreadable_2xx_answer_retries_every_event(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    keen.script(Reply(200, b"<html>OK</html>"))

    result = await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 2), connector.rendering))

    assert clean(result) == (200, [0, 1], [])


async def test_an_invalid_collection_name_is_fatal(keen: FakeKeen, connectors: MakeKeen) -> None:
    connector = connectors(collection_name="$events")
    with pytest.raises(FatalError, match="collection name"):
        await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 2), connector.rendering))


# --- whole-request answers ---------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_an_invalid_write_key_is_fatal_and_says_so(
    keen: FakeKeen, connectors: MakeKeen, status: int
) -> None:
    wrong = "not-the-write-key-0123456789"
    if status == 403:
        keen.script(Reply(403, b'{"message":"Forbidden","error_code":"ForbiddenError"}'))
    connector = connectors(write_key=wrong if status == 401 else KEEN_WRITE_KEY)
    with pytest.raises(FatalError) as caught:
        await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 1), connector.rendering))

    assert caught.value.http_status == status
    assert "invalid write key" in caught.value.message
    assert wrong not in str(caught.value)
    assert KEEN_WRITE_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, headers={"Retry-After": "30"}), 30.0),
        (Reply(503, headers={"Retry-After": "5"}), 5.0),
        (Reply(500), None),
    ],
)
async def test_retryable_answers_raise_with_retry_after(
    keen: FakeKeen, connectors: MakeKeen, reply: Reply, retry_after: float | None
) -> None:
    keen.script(reply)
    connector = connectors()
    with pytest.raises(RetryableError) as caught:
        await connector.send(batch_of(Kind.USAGE, records(Kind.USAGE, 2), connector.rendering))

    assert (caught.value.http_status, caught.value.retry_after) == (reply.status, retry_after)
    assert len(keen.requests) == 1


async def test_other_4xx_are_fatal(keen: FakeKeen, connectors: MakeKeen) -> None:
    connector = connectors(project_id="no-such-project")
    with pytest.raises(DestinationMissing, match="404") as caught:
        await connector.send(batch_of(Kind.USAGE, records(Kind.USAGE, 1), connector.rendering))
    assert caught.value.http_status == 404


async def test_413_splits_the_request_in_halves_and_delivers_everything(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    items = records(Kind.EVENT, 16)
    batch = batch_of(Kind.EVENT, items, connector.rendering)
    keen.max_request_bytes = sum(map(len, batch.payloads[:5]))

    assert clean(await connector.send(batch)) == (200, [], [])
    assert keen.requests[0].reply.status == 413
    assert all(len(r.body) <= keen.max_request_bytes for r in keen.accepted())
    assert [e["id"] for e in keen.stored(COLLECTION)] == [e["id"] for e in items]


async def test_an_event_too_large_on_its_own_is_rejected(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors()
    items = records(Kind.EVENT, 3)
    items[0]["detail"] = {"trace": "z" * 5000}
    batch = batch_of(Kind.EVENT, items, connector.rendering)
    keen.max_request_bytes = 3000

    result = await connector.send(batch)

    assert [p for p, _ in result.rejected] == [0]
    assert list(result.retry) == []
    assert [e["id"] for e in keen.stored(COLLECTION)] == [items[1]["id"], items[2]["id"]]


async def test_a_failure_after_some_requests_went_returns_only_the_rest_for_retry(
    keen: FakeKeen, connectors: MakeKeen
) -> None:
    connector = connectors(size=2)
    items = records(Kind.USAGE, 5)
    batch = batch_of(Kind.USAGE, items, connector.rendering)
    keen.script(*[Reply(200, json.dumps({COLLECTION: [{"success": True}] * 2}).encode())], 503)

    result = await connector.send(batch)

    assert clean(result) == (503, [2, 3, 4], [])
    assert clean(await connector.send(subset(batch, result.retry))) == (200, [], [])
    sent = Counter(e["id"] for r in keen.requests[2:] for e in r.json()[COLLECTION])
    assert sent == Counter(e["id"] for e in items[2:])


async def test_an_unreachable_keen_is_retryable(keen: FakeKeen, connectors: MakeKeen) -> None:
    connector = connectors()
    await keen.close()
    with pytest.raises(RetryableError, match="network error"):
        await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 1), connector.rendering))


async def test_a_redirect_to_another_host_is_refused(keen: FakeKeen, connectors: MakeKeen) -> None:
    async with Receiver() as elsewhere:
        keen.script(Reply.redirect(elsewhere.url + keen.path, 308))
        connector = connectors()
        with pytest.raises(FatalError, match="another host"):
            await connector.send(batch_of(Kind.EVENT, records(Kind.EVENT, 1), connector.rendering))
        assert elsewhere.requests == []


# --- shapes (FORMATS.md §3.3) ------------------------------------------------------------

EVENT_KEYS = {
    "id",
    "alert",
    "description",
    "detail",
    "endpoint",
    "event_severity",
    "event_source",
    "event_type",
    "organisation",
    "sim",
    "timestamp",
}
USAGE_KEYS = {
    "cost",
    "currency",
    "end_timestamp",
    "endpoint",
    "id",
    "operator",
    "organisation",
    "start_timestamp",
    "sim",
    "tariff",
    "traffic_type",
    "volume",
}


@pytest.mark.parametrize("version", [Version.OLD, Version.MIGRATED])
async def test_legacy_events_arrive_in_the_reduced_keen_shape(
    keen: FakeKeen, connectors: MakeKeen, version: Version
) -> None:
    connector = connectors(version=version)
    assert connector.rendering == Rendering(version, Shape.KEEN)
    items = records(Kind.EVENT, 20)

    result = await connector.send(batch_of(Kind.EVENT, items, connector.rendering))

    assert clean(result) == (200, [], [])
    stored = keen.stored(COLLECTION)
    assert len(stored) == 20
    for event, original in zip(stored, items, strict=True):
        null_roots = {k for k in ("detail", "endpoint", "sim") if original[k] is None}
        expected = EVENT_KEYS - null_roots if version is Version.OLD else EVENT_KEYS
        assert set(event) == expected  # no imsi, no user; old omits null roots
        assert all(event[k] is None for k in null_roots & set(event))
        assert set(event["endpoint"]) == {"id", "name"}
        assert set(event["sim"]) == {"id", "iccid"}
        assert event["event_source"] == {
            "id": original["event_source"]["id"],
            "name": original["event_source"]["description"],
        }
        assert event["alert"] in (0, 1)
        assert " " in event["timestamp"]
        assert "T" not in event["timestamp"]


@pytest.mark.parametrize(
    ("version", "keen_timestamp"), [(Version.OLD, True), (Version.MIGRATED, False)]
)
async def test_legacy_usage_arrives_in_the_reduced_keen_shape(
    keen: FakeKeen, connectors: MakeKeen, version: Version, keen_timestamp: bool
) -> None:
    connector = connectors(version=version)
    items = records(Kind.USAGE, 20)

    await connector.send(batch_of(Kind.USAGE, items, connector.rendering))

    stored = keen.stored(COLLECTION)
    assert len(stored) == 20
    for usage, original in zip(stored, items, strict=True):
        assert set(usage) == USAGE_KEYS | ({"keen"} if keen_timestamp else set())  # no imsi(_id)
        unset_balance = version is Version.OLD and original["endpoint"]["balance"] is None
        assert set(usage["endpoint"]) == ({"id"} if unset_balance else {"id", "balance"})
        assert set(usage["sim"]) == {"id", "iccid"}
        if keen_timestamp:
            assert usage["keen"] == {"timestamp": usage["start_timestamp"]}
            assert " " in usage["keen"]["timestamp"]


@pytest.mark.parametrize("kind", [Kind.EVENT, Kind.USAGE])
async def test_new_records_arrive_in_the_full_shape(
    keen: FakeKeen, connectors: MakeKeen, kind: Kind
) -> None:
    connector = connectors(version=Version.NEW)
    items = records(kind, 5)

    await connector.send(batch_of(kind, items, connector.rendering))

    assert keen.stored(COLLECTION) == items  # the Webhook `new` shape, imsi included


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"write_key": ""}, ValueError),
        ({"write_key": "key\r\nX-Injected: 1"}, ValueError),
        ({"collection_name": ""}, ValueError),
        ({"size": 0}, ValueError),
        ({"size": 10_001}, ValueError),
        ({"base_url": "http://127.0.0.1:9"}, PrivateDestinationError),
    ],
)
def test_build_refuses_bad_config(options: dict[str, Any], error: type[Exception]) -> None:
    config = {
        "project_id": KEEN_PROJECT,
        "write_key": KEEN_WRITE_KEY,
        "collection_name": COLLECTION,
        "version": Version.NEW,
        **options,
    }
    with pytest.raises(error):
        KeenConfig(**config).build()


def test_the_default_destination_is_keen_and_the_key_stays_out_of_the_repr() -> None:
    config = KeenConfig(KEEN_PROJECT, KEEN_WRITE_KEY, COLLECTION, Version.OLD)
    assert config.events_url == f"https://api.keen.io/3.0/projects/{KEEN_PROJECT}/events"
    assert KEEN_WRITE_KEY not in repr(config)
    keen = config.build()
    assert (keen.max_batch, keen.linger_secs) == (3000, None)
