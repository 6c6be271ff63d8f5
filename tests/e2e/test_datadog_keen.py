"""Datadog and KeenIO through the daemon, and the dead letters a destination leaves behind.

``streamer run`` is a real subprocess whose ``STREAMER_DATADOG_URL``/``STREAMER_KEENIO_URL``
point at protocol-faithful fakes on 127.0.0.1 (``tests/connectors/fakes.py``): Datadog's series
API and logs intake, Keen's batch events API with its per-event results. What the issue asks
to see (API.md §3, §6; FORMATS.md §3.3):

- Datadog: each data usage record is exactly four metric points at its ``end_timestamp`` with
  its tags (SMS usage is not sent); each event is a log with its attributes and a status from
  its severity; a wrong key puts the stream in Error saying "invalid API key"; ``Retry-After``
  on a 429 is honoured; a 413 makes requests smaller and loses nothing.
- KeenIO: events Keen refuses as invalid become dead letters with Keen's reason, events that
  fail transiently are the only ones sent again, and only acknowledged events count as
  delivered; ``old``/``migrated`` streams get the reduced shape.
- Dead letters survive a restart (SIGTERM or kill -9), are counted on ``/metrics``, and are
  delivered once the cause is fixed and they are replayed, also when replayed while paused.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from schemas import Kind, Record, Version
from tests.connectors.fakes import (
    DATADOG_API_KEY,
    KEEN_PROJECT,
    KEEN_WRITE_KEY,
    FakeDatadog,
    FakeKeen,
    KeenError,
    valid_tag,
)
from tests.e2e.harness import (
    API_POLL_SECS,
    Daemon,
    StartDaemon,
    eventually,
    fleet_records,
    ids_of,
    ndjson,
)
from tests.receivers import Reply

RUNNING, PAUSED, ERROR = 1, 2, 3
TYPE_OF_KIND = {Kind.USAGE: 1, Kind.EVENT: 2}
SERIES, LOGS = "/api/v2/series", "/api/v2/logs"
PATH_OF_KIND = {Kind.USAGE: SERIES, Kind.EVENT: LOGS}
METRICS = ("endpoint.volume", "endpoint.volume_tx", "endpoint.volume_rx", "endpoint.cost")
COLLECTION = "sim_events"
DEAD_LETTERED = "streamer_records_dead_lettered_total"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def daemon(start_daemon: StartDaemon, datadog: FakeDatadog, keen: FakeKeen) -> Daemon:
    """A daemon whose Datadog and KeenIO destinations are the fakes."""
    return await start_daemon(
        STREAMER_DATADOG_URL=datadog.url,
        STREAMER_KEENIO_URL=keen.url,
        STREAMER_ALLOW_PRIVATE_DESTINATIONS="true",
    )


# --- helpers -------------------------------------------------------------------------------------


async def ingest(daemon: Daemon, kind: Kind, records: list[Record]) -> None:
    body = ndjson(records, kind, Version.NEW)
    await daemon.ingest_ok(kind, body, len(records), ndjson=True)


async def datadog_stream(daemon: Daemon, type_id: int = 3, api_key: str = DATADOG_API_KEY) -> int:
    credentials = {"api_key": api_key, "region": "EU"}
    return await daemon.create_destination_stream("Datadog", credentials, type_id=type_id)


async def keen_stream(daemon: Daemon, version: Version = Version.NEW, type_id: int = 2) -> int:
    credentials = {
        "project_id": KEEN_PROJECT,
        "write_key": KEEN_WRITE_KEY,
        "collection_name": COLLECTION,
        "size": 50,
    }
    return await daemon.create_destination_stream(
        "KeenIO", credentials, version=version, type_id=type_id
    )


def unix(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp())


def points_of(usage: Record) -> tuple[float, float, float, float]:
    """The values of ``METRICS`` for a usage record: volume total, tx, rx, and cost."""
    volume = usage["volume"]
    return volume["total"], volume["tx"], volume["rx"], usage["cost"]


def dd_tag(key: str, value: object) -> str:
    """Datadog's documented tag normalisation of ``key:value`` (lower case; characters other
    than letters, digits, ``_ - : . /`` become ``_``; no ``_`` runs)."""
    return re.sub(r"__+", "_", re.sub(r"[^\w\-:./]", "_", f"{key}:{value}".lower()))


def usage_tags(usage: Record) -> list[str]:
    endpoint, operator, tariff = usage["endpoint"], usage["operator"], usage["tariff"]
    pairs = [
        ("service", "streamer"),
        ("endpoint_id", endpoint["id"]),
        ("endpoint_name", endpoint["name"]),
        ("organisation_id", usage["organisation"]["id"]),
        ("organisation_name", usage["organisation"]["name"]),
        ("operator_id", operator["id"]),
        ("operator_name", operator["name"]),
        ("country_id", operator["country"]["id"]),
        ("country_name", operator["country"]["name"]),
        ("traffic_type_id", usage["traffic_type"]["id"]),
        ("traffic_type", usage["traffic_type"]["description"]),
        ("tariff_id", tariff["id"]),
        ("tariff_name", tariff["name"]),
        ("ratezone_id", tariff["ratezone"]["id"]),
        ("ratezone_name", tariff["ratezone"]["name"]),
        ("currency", usage["currency"]["code"]),
    ]
    return [dd_tag(key, value) for key, value in pairs]


def keen_sent(keen: FakeKeen) -> Counter[int]:
    """How often each event id was in a request to Keen, whatever the answer."""
    return Counter(
        e["id"] for r in keen.requests if r.path == keen.path for e in r.json()[COLLECTION]
    )


def keen_stored_ids(keen: FakeKeen) -> Counter[int]:
    return Counter(e["id"] for e in keen.stored(COLLECTION))


async def letters_listed(daemon: Daemon, stream_id: int, count: int) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        letters = await daemon.dead_letters(stream_id)
        return letters if len(letters) >= count else None

    found: list[dict[str, Any]] = await eventually(
        listed, what=f"{count} dead letters of stream {stream_id}", interval_secs=API_POLL_SECS
    )
    assert len(found) == count, found
    return found


async def replay(daemon: Daemon, stream_id: int) -> int:
    response = await daemon.request("POST", f"/api/v2/data_stream/{stream_id}/dead_letter/replay")
    assert response.status == 202, (response.status, response.text)
    body = response.json()
    assert set(body) == {"requeued"}, body
    requeued: int = body["requeued"]
    return requeued


# --- Datadog -------------------------------------------------------------------------------------


async def test_datadog_gets_four_metrics_per_data_usage_record_and_a_log_per_event(
    daemon: Daemon, datadog: FakeDatadog
) -> None:
    stream_id = await datadog_stream(daemon)
    usages = fleet_records(11, 30, Kind.USAGE)
    data = [u for u in usages if u["traffic_type"]["id"] == 5]  # SMS counts are not megabytes
    assert 0 < len(data) < len(usages)
    events = fleet_records(12, 40, Kind.EVENT)
    await ingest(daemon, Kind.USAGE, usages)
    await ingest(daemon, Kind.EVENT, events)

    await eventually(
        lambda: len(datadog.series()) >= 4 * len(data) and len(datadog.logs()) >= len(events),
        what="every data usage record's series and every event's log at Datadog",
    )
    stream = await daemon.settled(stream_id, len(usages) + len(events))
    assert stream["status"]["id"] == RUNNING
    assert stream["stats"]["last_result_code"] == 202

    for request in datadog.requests:
        assert request.method == "POST"
        assert request.headers["DD-API-KEY"] == DATADOG_API_KEY
        assert request.headers["Content-Encoding"] == "gzip"
        assert 200 <= request.reply.status < 300, request

    # Usage: exactly four count points per record, at its end, tagged with what it is about.
    series = datadog.series()
    assert {s["type"] for s in series} == {1}  # count
    assert all(valid_tag(t) for s in series for t in s["tags"])
    got = Counter(
        (s["metric"], *((p["timestamp"], p["value"]) for p in s["points"]), tuple(s["tags"]))
        for s in series
    )
    assert got == Counter(
        (metric, (unix(u["end_timestamp"]), value), tuple(usage_tags(u)))
        for u in data
        for metric, value in zip(METRICS, points_of(u), strict=True)
    )

    # Events: one log each, the event's fields as attributes, status from the severity.
    logs = {log["id"]: log for log in datadog.logs()}
    assert len(datadog.logs()) == len(logs) == len(events)
    statuses = {"INFO": "info", "WARN": "warn", "CRITICAL": "critical"}
    for event in events:
        log = logs[event["id"]]
        assert {k: log[k] for k in event} == event
        assert log["status"] == statuses[event["event_severity"]["description"]]
        assert log["message"] == event["description"]
        assert log["ddsource"] == "streamer"
        assert log["service"] == "streamer"
        tags = log["ddtags"].split(",")
        assert all(map(valid_tag, tags))
        assert f"event_type_id:{event['event_type']['id']}" in tags
        assert f"organisation_id:{event['organisation']['id']}" in tags
    assert {log["status"] for log in logs.values()} == set(statuses.values())  # all three seen


@pytest.mark.parametrize("kind", [Kind.USAGE, Kind.EVENT])
async def test_datadog_refusing_the_api_key_puts_the_stream_in_error_saying_so(
    daemon: Daemon, datadog: FakeDatadog, kind: Kind
) -> None:
    wrong_key = "f" * 32
    stream_id = await datadog_stream(daemon, TYPE_OF_KIND[kind], api_key=wrong_key)
    await ingest(daemon, kind, fleet_records(13, 3, kind))

    stream = await daemon.reaches_status(stream_id, ERROR)
    error = stream["error"]
    assert "invalid API key" in error["message"], error
    assert wrong_key not in error["message"]
    assert error["http_status"] == 403
    assert [(r.path, r.reply.status) for r in datadog.requests] == [(PATH_OF_KIND[kind], 403)]
    assert stream["stats"]["delivered_records"] == 0


@pytest.mark.parametrize("kind", [Kind.USAGE, Kind.EVENT])
async def test_datadog_429_retry_after_is_honoured(
    daemon: Daemon, datadog: FakeDatadog, kind: Kind
) -> None:
    stream_id = await datadog_stream(daemon, TYPE_OF_KIND[kind])
    await ingest(daemon, kind, fleet_records(14, 3, kind))
    await daemon.settled(stream_id, 3)  # past the first batch: no fail fast

    datadog.script(Reply(429, b'{"errors":["Too many requests"]}', {"Retry-After": "2"}))
    await ingest(daemon, kind, fleet_records(15, 5, kind))
    stream = await daemon.settled(stream_id, 8)

    statuses = [r.reply.status for r in datadog.requests]
    assert statuses == [202, 429, 202], statuses
    _, refused, retried = datadog.requests
    assert retried.body == refused.body  # the same records again
    waited = retried.at - refused.at
    assert waited >= 2.0, f"the retry came {waited:.3f} s after a 429 with Retry-After: 2"
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None


@pytest.mark.parametrize("kind", [Kind.USAGE, Kind.EVENT])
async def test_datadog_413_makes_requests_smaller_and_loses_nothing(
    daemon: Daemon, datadog: FakeDatadog, kind: Kind
) -> None:
    records = fleet_records(16, 40, kind)
    limit = 12_000  # several records fit, the whole batch does not
    if kind is Kind.USAGE:
        datadog.max_series_bytes = limit
    else:
        datadog.max_log_bytes = limit
    stream_id = await datadog_stream(daemon, TYPE_OF_KIND[kind])
    await ingest(daemon, kind, records)

    stream = await daemon.settled(stream_id, len(records))
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None
    assert 413 in [r.reply.status for r in datadog.requests]
    assert len(datadog.accepted(PATH_OF_KIND[kind])) >= 2  # the batch went in smaller parts
    if kind is Kind.USAGE:
        points = Counter(
            (s["metric"], p["timestamp"], p["value"]) for s in datadog.series() for p in s["points"]
        )
        assert points == Counter(
            (metric, unix(r["end_timestamp"]), value)
            for r in records
            if r["traffic_type"]["id"] == 5  # data usage only: SMS is not sent
            for metric, value in zip(METRICS, points_of(r), strict=True)
        )
    else:
        assert Counter(log["id"] for log in datadog.logs()) == Counter(ids_of(records))


# --- KeenIO --------------------------------------------------------------------------------------


async def test_keen_invalid_events_become_dead_letters_and_only_transient_failures_are_retried(
    daemon: Daemon, keen: FakeKeen
) -> None:
    events = fleet_records(21, 20, Kind.EVENT)
    invalid = [events[i]["id"] for i in (2, 9, 15)]
    for i in (2, 9, 15):
        events[i]["vendor.note"] = "Keen refuses dots in property names"  # an unknown field
    transient = [events[i]["id"] for i in (4, 11)]
    for event_id in transient:
        keen.failing[event_id] = KeenError("InternalServerError", "Try again later.")
        keen.failures_left[event_id] = 1
    stream_id = await keen_stream(daemon)
    await ingest(daemon, Kind.EVENT, events)

    letters = await letters_listed(daemon, stream_id, len(invalid))
    stream = await daemon.settled(stream_id, len(events) - len(invalid))
    assert stream["status"]["id"] == RUNNING
    assert stream["stats"]["last_result_code"] == 200

    assert [letter["record"]["id"] for letter in letters] == invalid
    for letter in letters:
        assert letter["reason"].startswith("InvalidPropertyNameError: "), letter
        assert "vendor.note" in letter["reason"]
        assert letter["queued"] is False
        assert letter["record"]["vendor.note"] == "Keen refuses dots in property names"
    assert len({letter["offset"] for letter in letters}) == len(invalid)

    # Keen saw the refused events once, the transient failures twice, everything else once.
    expected = Counter(ids_of(events)) + Counter(transient)
    assert keen_sent(keen) == expected
    assert keen_stored_ids(keen) == Counter(i for i in ids_of(events) if i not in invalid)
    assert await daemon.metric(DEAD_LETTERED, stream=str(stream_id)) == len(invalid)


EVENT_KEYS = {"id", "alert", "description", "detail", "endpoint", "event_severity",
              "event_source", "event_type", "organisation", "sim", "timestamp"}  # fmt: skip
USAGE_KEYS = {"cost", "currency", "end_timestamp", "endpoint", "id", "operator", "organisation",
              "start_timestamp", "sim", "tariff", "traffic_type", "volume"}  # fmt: skip


@pytest.mark.parametrize("version", [Version.OLD, Version.MIGRATED])
async def test_keen_gets_the_reduced_shape_of_legacy_streams(
    daemon: Daemon, keen: FakeKeen, version: Version
) -> None:
    events = fleet_records(22, 15, Kind.EVENT)
    usages = fleet_records(23, 15, Kind.USAGE)
    stream_id = await keen_stream(daemon, version, type_id=3)
    await ingest(daemon, Kind.EVENT, events)
    await ingest(daemon, Kind.USAGE, usages)
    await daemon.settled(stream_id, len(events) + len(usages))

    stored = {e["id"]: e for e in keen.stored(COLLECTION)}
    assert set(stored) == set(ids_of(events) + ids_of(usages))
    for original in events:
        event = stored[original["id"]]
        unset = {k for k in ("detail", "endpoint", "sim") if original[k] is None}
        assert set(event) == (EVENT_KEYS - unset if version is Version.OLD else EVENT_KEYS)
        assert original["endpoint"] is not None  # the fleet's events all have one
        assert event["endpoint"] == {k: original["endpoint"][k] for k in ("id", "name")}
        assert event["sim"] == {k: original["sim"][k] for k in ("id", "iccid")}
        assert "keen" not in event
    for original in usages:
        usage = stored[original["id"]]
        keen_timestamp = {"keen"} if version is Version.OLD else set()
        assert set(usage) == USAGE_KEYS | keen_timestamp  # no imsi, no imsi_id
        unset_balance = version is Version.OLD and original["endpoint"]["balance"] is None
        assert set(usage["endpoint"]) == ({"id"} if unset_balance else {"id", "balance"})
        assert usage["endpoint"]["id"] == original["endpoint"]["id"]
        assert usage["sim"] == {k: original["sim"][k] for k in ("id", "iccid")}
        if version is Version.OLD:
            assert usage["keen"] == {"timestamp": usage["start_timestamp"]}
            assert usage["start_timestamp"] == original["start_timestamp"].replace("T", " ")[:-1]


# --- dead letters --------------------------------------------------------------------------------


async def refused_until_fixed(
    daemon: Daemon, keen: FakeKeen, seed: int, count: int
) -> tuple[int, list[int], list[int], list[dict[str, Any]]]:
    """A Keen stream, ``count`` events of which Keen refuses two as invalid (until told to
    accept them), delivered; return the stream, all ids, the refused ids and the letters."""
    events = fleet_records(seed, count, Kind.EVENT)
    refused = [events[1]["id"], events[-2]["id"]]
    for event_id in refused:
        keen.failing[event_id] = KeenError("InvalidPropertyValueError", "sim.iccid looks wrong")
    stream_id = await keen_stream(daemon)
    await ingest(daemon, Kind.EVENT, events)
    letters = await letters_listed(daemon, stream_id, len(refused))
    await daemon.settled(stream_id, count - len(refused))
    assert [letter["record"]["id"] for letter in letters] == refused
    assert all(
        letter["reason"] == "InvalidPropertyValueError: sim.iccid looks wrong" for letter in letters
    )
    assert keen_stored_ids(keen) == Counter(i for i in ids_of(events) if i not in refused)
    return stream_id, ids_of(events), refused, letters


async def stop_and_restart(daemon: Daemon, how: str) -> None:
    if how == "SIGTERM":
        code, _ = await daemon.stop()
        assert code == 0
    else:
        await daemon.kill9()
    await daemon.restart()


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
async def test_dead_letters_survive_a_restart_and_are_counted(
    daemon: Daemon, keen: FakeKeen, how: str
) -> None:
    stream_id, ids, refused, letters = await refused_until_fixed(daemon, keen, 31, 8)
    assert await daemon.metric(DEAD_LETTERED, stream=str(stream_id)) == len(refused)

    await stop_and_restart(daemon, how)

    stream = await daemon.reaches_status(stream_id, RUNNING)
    if how == "SIGTERM":
        assert await daemon.dead_letters(stream_id) == letters
        assert keen_sent(keen) == Counter(ids)  # nothing sent again by the restart
    else:
        # The stream's last position write may be lost to kill -9 (at-least-once): the batch
        # then goes again, its records are refused again, and it counts once acknowledged
        # again; wait for that, so what follows does not depend on when it happened.
        stream = await daemon.settled(stream_id, len(ids) - len(refused))
        after = await daemon.dead_letters(stream_id)
        if keen_sent(keen) == Counter(ids):  # nothing sent again: every letter unchanged
            assert after == letters
        else:  # sent again: the same letters, one per offset, stamped with the new refusal
            assert [unstamped(letter) for letter in after] == list(map(unstamped, letters))
    assert stream["stats"]["delivered_records"] == len(ids) - len(refused)


def unstamped(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter without ``at``, the time of its last refusal."""
    return {key: value for key, value in letter.items() if key != "at"}


@pytest.mark.parametrize("how", [None, "SIGTERM", "kill -9"])
async def test_replayed_dead_letters_are_delivered_once_the_cause_is_fixed(
    daemon: Daemon, keen: FakeKeen, how: str | None
) -> None:
    stream_id, ids, refused, _ = await refused_until_fixed(daemon, keen, 32, 8)
    if how is not None:
        await stop_and_restart(daemon, how)
        await daemon.reaches_status(stream_id, RUNNING)
        # the batch whose position kill -9 lost is sent (and refused) again before this holds
        await daemon.settled(stream_id, len(ids) - len(refused))
    before = await daemon.dead_letters(stream_id)  # one per refused record, resent or not

    keen.failing.clear()  # the cause fixed: Keen accepts them now
    assert await replay(daemon, stream_id) == len(before)

    await eventually(
        lambda: set(refused) <= set(keen_stored_ids(keen)),
        timeout_secs=5,  # a stream idle but for these few records: milliseconds when it works
        what="the replayed dead letters at Keen",
    )
    stream = await daemon.settled(stream_id, len(ids) - len(refused) + len(before))
    assert stream["status"]["id"] == RUNNING
    assert await daemon.dead_letters(stream_id) == []
    assert set(keen_stored_ids(keen)) == set(ids)
    if how != "kill -9":
        assert keen_stored_ids(keen) == Counter(ids)  # each once, the replayed ones included
        assert keen_sent(keen) == Counter(ids) + Counter(refused)  # refused, then replayed
    assert await replay(daemon, stream_id) == 0  # nothing left to replay


async def test_dead_letters_replayed_while_paused_are_sent_on_resume(
    daemon: Daemon, keen: FakeKeen
) -> None:
    stream_id, ids, refused, letters = await refused_until_fixed(daemon, keen, 33, 8)
    await daemon.patch_status(stream_id, PAUSED)

    keen.failing.clear()
    assert await replay(daemon, stream_id) == len(refused)
    queued = await daemon.dead_letters(stream_id)
    assert [letter["offset"] for letter in queued] == [letter["offset"] for letter in letters]
    assert all(letter["queued"] is True for letter in queued)
    assert (await daemon.stream(stream_id))["status"]["id"] == PAUSED
    assert keen_sent(keen) == Counter(ids)  # nothing sent while paused

    await daemon.patch_status(stream_id, RUNNING)
    await eventually(
        lambda: set(refused) <= set(keen_stored_ids(keen)), what="the replayed dead letters"
    )
    stream = await daemon.settled(stream_id, len(ids))
    assert stream["status"]["id"] == RUNNING
    assert await daemon.dead_letters(stream_id) == []
    assert keen_stored_ids(keen) == Counter(ids)
