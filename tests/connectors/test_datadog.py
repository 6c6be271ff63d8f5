"""The Datadog connector over real HTTP on loopback (DESIGN.md §4, connectors/datadog.py).

Every request goes to a ``FakeDatadog`` on 127.0.0.1 (tests/connectors/fakes.py), which speaks
the series API, the logs intake and key validation as Datadog documents them, decodes gzip and
enforces the size limits itself.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

import connectors.datadog as connectors_datadog
from connectors.base import Batch, FatalError, Rendering, RetryableError
from connectors.datadog import Datadog, DatadogConfig, tag
from connectors.http import PrivateDestinationError
from schemas import Kind, Record, Version, dumps
from streamer.simulate import Fleet
from tests.connectors.fakes import DATADOG_API_KEY, FakeDatadog, valid_tag
from tests.receivers import Receiver, Reply

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

SERIES = "/api/v2/series"
LOGS = "/api/v2/logs"
METRICS = ("endpoint.volume", "endpoint.volume_tx", "endpoint.volume_rx", "endpoint.cost")

MakeDatadog = Callable[..., Datadog]

USAGE: Record = {
    "id": 4711,
    "cost": 0.0275,
    "currency": {"id": 1, "code": "EUR", "symbol": "€"},
    "volume": {"total": 2.291, "rx": 1.9, "tx": 0.391},
    "operator": {
        "id": 35,
        "name": "Telefónica",
        "mnc": "07",
        "country": {"id": 199, "mcc": "214", "name": "Spain"},
    },
    "organisation": {"id": 2, "name": "ACME Logistics, Inc."},
    "tariff": {"id": 557, "name": "Global Data Plan", "ratezone": {"id": 3, "name": "Zone 3"}},
    "traffic_type": {"id": 5, "description": "Data"},
    "endpoint": {
        "id": 17,
        "name": "Truck 17 / Hall B",
        "ip_address": "100.64.0.17",
        "tags": None,
        "imei": None,
        "balance": None,
    },
    "imsi": "901430000000017",
    "imsi_id": 50017,
    "sim": {
        "id": 10017,
        "iccid": "89883170000000000017",
        "msisdn": "4231000000017",
        "production_date": "2024-06-01T10:00:00Z",
    },
    "start_timestamp": "2026-11-01T08:00:00Z",
    "end_timestamp": "2026-11-01T08:05:09.750Z",
}


def batch_of(*items: tuple[Kind, Record]) -> Batch:
    """The records as the engine hands them over: canonical ``new`` JSON, kinds, offsets."""
    payloads = [dumps(record, kind, Version.NEW) for kind, record in items]
    kinds = [str(kind) for kind, _ in items]
    return Batch(f"stream-3:0-{len(items)}", payloads, kinds, list(range(len(items))))


def usages(count: int, seed: int = 1, traffic_type: int = 5) -> list[tuple[Kind, Record]]:
    """``count`` usage records of the fleet of one traffic type (5 data, 6 SMS)."""
    fleet = Fleet(seed)
    records: list[tuple[Kind, Record]] = []
    while len(records) < count:
        record = fleet.usage()
        if record["traffic_type"]["id"] == traffic_type:
            records.append((Kind.USAGE, record))
    return records


def events(count: int, seed: int = 2) -> list[tuple[Kind, Record]]:
    fleet = Fleet(seed)
    return [(Kind.EVENT, fleet.event()) for _ in range(count)]


def unix(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).replace(microsecond=0).timestamp())


@pytest.fixture
async def datadog() -> AsyncIterator[FakeDatadog]:
    async with FakeDatadog() as fake:
        yield fake


@pytest.fixture
async def connectors(datadog: FakeDatadog) -> AsyncIterator[MakeDatadog]:
    """Build connectors pointed at the fake (loopback allowed) and close them all after."""
    built: list[Datadog] = []

    def make(**options: Any) -> Datadog:
        options.setdefault("api_key", DATADOG_API_KEY)
        options.setdefault("base_url", datadog.url)
        options.setdefault("allow_private", True)
        connector = DatadogConfig(**options).build()
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


# --- usage records become metrics --------------------------------------------------------


async def test_a_usage_record_becomes_four_metrics_at_its_end_with_its_tags(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    result = await connectors().send(batch_of((Kind.USAGE, USAGE)))

    assert (result.http_status, list(result.retry), list(result.rejected)) == (202, [], [])
    series = datadog.series()
    assert [s["metric"] for s in series] == list(METRICS)
    assert [s["points"] for s in series] == [
        [{"timestamp": unix("2026-11-01T08:05:09Z"), "value": value}]
        for value in (2.291, 0.391, 1.9, 0.0275)
    ]
    assert {s["type"] for s in series} == {1}  # count: amounts used over the record's span
    expected_tags = [
        "service:streamer",
        "endpoint_id:17",
        "endpoint_name:truck_17_/_hall_b",
        "organisation_id:2",
        "organisation_name:acme_logistics_inc.",
        "operator_id:35",
        "operator_name:telefónica",
        "country_id:199",
        "country_name:spain",
        "traffic_type_id:5",
        "traffic_type:data",
        "tariff_id:557",
        "tariff_name:global_data_plan",
        "ratezone_id:3",
        "ratezone_name:zone_3",
        "currency:eur",
    ]
    assert all(s["tags"] == expected_tags for s in series)


async def test_sms_usage_is_acknowledged_and_never_sent_as_metrics(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    items = [
        item for pair in zip(usages(3), usages(3, traffic_type=6), strict=True) for item in pair
    ]
    result = await connectors().send(batch_of(*items))

    assert (list(result.retry), list(result.rejected)) == ([], [])
    data = [record for _, record in items if record["traffic_type"]["id"] == 5]
    assert len(datadog.series()) == 4 * len(data) == 12
    volumes = [s["points"][0]["value"] for s in datadog.series() if s["metric"] == METRICS[0]]
    assert sorted(volumes) == sorted(record["volume"]["total"] for record in data)
    assert all("traffic_type:data" in s["tags"] for s in datadog.series())

    datadog.requests.clear()
    result = await connectors().send(batch_of(*usages(4, traffic_type=6)))
    assert (list(result.retry), list(result.rejected)) == ([], [])
    assert datadog.requests == []


async def test_a_fleet_of_usage_records_becomes_exactly_four_points_each(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    records = usages(300)
    await connectors(service="fleet-streamer").send(batch_of(*records))

    expected = Counter(
        (metric, unix(r["end_timestamp"]), value)
        for _, r in records
        for metric, value in zip(
            METRICS,
            (r["volume"]["total"], r["volume"]["tx"], r["volume"]["rx"], r["cost"]),
            strict=True,
        )
    )
    series = datadog.series()
    got = Counter(
        (s["metric"], s["points"][0]["timestamp"], s["points"][0]["value"]) for s in series
    )
    assert got == expected
    assert len(series) == 4 * len(records)
    for s in series:
        keys = [t.partition(":")[0] for t in s["tags"]]
        assert {"endpoint_id", "endpoint_name", "organisation_id", "operator_name"} <= set(keys)
        assert {"country_name", "traffic_type", "tariff_name", "currency"} <= set(keys)
        assert "service:fleet-streamer" in s["tags"]
        assert all(map(valid_tag, s["tags"]))


async def test_a_usage_record_without_endpoint_is_sent_without_endpoint_tags(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    await connectors().send(batch_of((Kind.USAGE, {**USAGE, "endpoint": None})))

    series = datadog.series()
    assert len(series) == 4
    assert not [t for s in series for t in s["tags"] if t.startswith("endpoint_")]


# --- events become logs ------------------------------------------------------------------


async def test_events_become_logs_carrying_the_whole_event(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    records = events(50)
    result = await connectors(service="iot-events").send(batch_of(*records))

    assert (result.http_status, list(result.retry), list(result.rejected)) == (202, [], [])
    logs = datadog.logs()
    assert len(logs) == len(records)
    for log, (_, event) in zip(logs, records, strict=True):
        assert {k: log[k] for k in event} == event  # the full event as attributes
        assert log["ddsource"] == "streamer"
        assert log["service"] == "iot-events"
        assert log["message"] == event["description"]
        assert log["status"] == event["event_severity"]["description"].lower()
        tags = log["ddtags"].split(",")
        assert all(map(valid_tag, tags))
        assert f"event_type_id:{event['event_type']['id']}" in tags
        assert f"organisation_id:{event['organisation']['id']}" in tags
        assert f"endpoint_id:{event['endpoint']['id']}" in tags
        assert f"alert:{str(event['alert']).lower()}" in tags


@pytest.mark.parametrize(
    ("severity_id", "severity", "status"),
    [(0, "INFO", "info"), (1, "WARN", "warn"), (2, "CRITICAL", "critical")],
)
async def test_log_status_follows_the_event_severity(
    datadog: FakeDatadog, connectors: MakeDatadog, severity_id: int, severity: str, status: str
) -> None:
    event = Fleet(3).event()
    event["event_severity"] = {"id": severity_id, "description": severity}
    await connectors().send(batch_of((Kind.EVENT, event)))

    [log] = datadog.logs()
    assert log["status"] == status


async def test_a_mixed_batch_goes_gzipped_to_both_apis_with_the_key(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    items = [item for pair in zip(usages(5), events(5), strict=True) for item in pair]
    result = await connectors().send(batch_of(*items))

    assert result.http_status == 202
    assert sorted(r.path for r in datadog.requests) == [LOGS, SERIES]
    for request in datadog.requests:
        assert request.method == "POST"
        assert request.headers["DD-API-KEY"] == DATADOG_API_KEY
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.headers["Content-Type"] == "application/json"
        assert int(request.headers["Content-Length"]) < len(request.body)  # it was compressed
    assert len(datadog.series()) == 4 * 5
    assert [log["id"] for log in datadog.logs()] == [e["id"] for k, e in items if k is Kind.EVENT]


# --- size limits -------------------------------------------------------------------------


async def test_5000_large_events_are_sent_within_every_log_intake_limit(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    records = events(5000)
    for _, event in records[2500:]:  # the second half is large: the byte limit binds first
        event["detail"] = {"trace": "x" * 6000}
    result = await connectors().send(batch_of(*records))

    assert (list(result.retry), list(result.rejected)) == ([], [])
    assert all(r.reply.status == 202 for r in datadog.requests)
    entries = [len(r.json()) for r in datadog.requests]
    assert max(entries) <= 1000
    assert all(len(r.body) < 5_000_000 for r in datadog.requests)  # as the fake gunzipped it
    assert all(r.headers["Content-Encoding"] == "gzip" for r in datadog.requests)
    assert entries[:2] == [1000, 1000]  # small events: the entry limit binds
    assert min(entries[:-1]) < 1000  # large events: the byte limit binds first
    ids = [log["id"] for log in datadog.logs()]
    assert ids == [e["id"] for _, e in records]  # each exactly once, in order


async def test_series_requests_stay_within_both_size_limits(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    rnd = random.Random(7)
    records = usages(3000)
    for _, record in records:  # long, distinct names: over 5 MB of series in all
        record["endpoint"]["name"] = rnd.randbytes(90).hex()
    result = await connectors().send(batch_of(*records))

    assert (list(result.retry), list(result.rejected)) == ([], [])
    assert all(r.reply.status == 202 for r in datadog.requests)
    assert len(datadog.requests) > 1
    for request in datadog.requests:
        assert int(request.headers["Content-Length"]) <= 512_000
        assert len(request.body) < 5_242_880
    assert len(datadog.series()) == 4 * 3000
    assert len({tuple(s["tags"]) for s in datadog.series()}) == 3000


async def test_series_too_large_compressed_are_split_before_sending(
    datadog: FakeDatadog, connectors: MakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real fleets compress ~15:1, so 500 kB compressed is rarely what binds; with the limit
    lowered on both sides, the connector splits before Datadog would answer 413."""
    monkeypatch.setattr(connectors_datadog, "MAX_SERIES_COMPRESSED", 4_000)
    datadog.max_series_compressed = 4_000
    records = usages(200)
    result = await connectors().send(batch_of(*records))

    assert (list(result.retry), list(result.rejected)) == ([], [])
    assert len(datadog.requests) > 2
    assert all(r.reply.status == 202 for r in datadog.requests)  # no 413 was needed
    assert all(int(r.headers["Content-Length"]) <= 4_000 for r in datadog.requests)
    assert len(datadog.series()) == 4 * 200


@pytest.mark.parametrize(
    ("kind", "path", "limit"),
    [(Kind.USAGE, SERIES, "max_series_bytes"), (Kind.EVENT, LOGS, "max_log_bytes")],
)
async def test_413_splits_the_request_in_halves_and_delivers_everything(
    datadog: FakeDatadog, connectors: MakeDatadog, kind: Kind, path: str, limit: str
) -> None:
    records = usages(20) if kind is Kind.USAGE else events(20)
    connector = connectors()
    await connector.send(batch_of(records[0]))
    one = len(datadog.requests[0].body)
    setattr(datadog, limit, int(one * 3.5))  # about three records per request now
    datadog.requests.clear()

    result = await connector.send(batch_of(*records))

    assert (list(result.retry), list(result.rejected)) == ([], [])
    statuses = [r.reply.status for r in datadog.requests]
    assert statuses[0] == 413
    assert set(statuses) == {413, 202}
    accepted = datadog.accepted(path)
    assert all(len(r.body) < one * 3.5 for r in accepted)
    if kind is Kind.USAGE:
        ends = Counter(s["points"][0]["timestamp"] for s in datadog.series())
        assert ends == Counter(unix(r["end_timestamp"]) for _, r in records for _ in METRICS)
    else:
        assert [log["id"] for log in datadog.logs()] == [e["id"] for _, e in records]


async def test_a_record_too_large_for_any_request_is_rejected_the_rest_delivered(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    records = events(3)
    records[1][1]["detail"] = {"trace": "y" * 20_000}
    datadog.max_log_bytes = 10_000

    result = await connectors().send(batch_of(*records))

    assert list(result.retry) == []
    [(position, reason)] = result.rejected
    assert position == 1
    assert "larger" in reason
    assert [log["id"] for log in datadog.logs()] == [records[0][1]["id"], records[2][1]["id"]]


async def test_unreadable_records_are_rejected_and_the_rest_delivered(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    good = batch_of((Kind.USAGE, USAGE))
    batch = Batch(
        "k",
        [b'{"id":1,"traffic_type":{"id":5}}', good.payloads[0], b"{}"],
        ["usage", "usage", "sms"],
        [10, 11, 12],
    )
    result = await connectors().send(batch)

    assert [position for position, _ in result.rejected] == [0, 2]
    assert "volume" in dict(result.rejected)[0]
    assert list(result.retry) == []
    assert len(datadog.series()) == 4


# --- answers and errors ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.USAGE, Kind.EVENT])
async def test_a_wrong_api_key_is_fatal_and_says_so(
    datadog: FakeDatadog, connectors: MakeDatadog, kind: Kind
) -> None:
    wrong = "ffffffffffffffffffffffffffffffff"
    records = usages(2) if kind is Kind.USAGE else events(2)
    with pytest.raises(FatalError) as caught:
        await connectors(api_key=wrong).send(batch_of(*records))

    assert caught.value.http_status == 403
    assert "invalid API key" in caught.value.message
    assert wrong not in str(caught.value)
    assert len(datadog.requests) == 1


async def test_401_is_fatal_with_a_plain_message(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    datadog.script(Reply(401, b'{"errors":["Unauthorized"]}'))
    with pytest.raises(FatalError, match="invalid API key") as caught:
        await connectors().send(batch_of(*events(1)))
    assert caught.value.http_status == 401


async def test_healthcheck_validates_the_key(datadog: FakeDatadog, connectors: MakeDatadog) -> None:
    await connectors().healthcheck()
    with pytest.raises(FatalError, match="invalid API key"):
        await connectors(api_key="not-the-key").healthcheck()

    assert [(r.method, r.path) for r in datadog.requests] == [("GET", "/api/v1/validate")] * 2
    assert datadog.requests[0].headers["DD-API-KEY"] == DATADOG_API_KEY


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, headers={"Retry-After": "7"}), 7.0),
        (Reply(503, headers={"Retry-After": "2"}), 2.0),
        (Reply(500), None),
        (Reply(408), None),
    ],
)
@pytest.mark.parametrize("kind", [Kind.USAGE, Kind.EVENT])
async def test_retryable_answers_raise_with_retry_after(
    datadog: FakeDatadog,
    connectors: MakeDatadog,
    reply: Reply,
    retry_after: float | None,
    kind: Kind,
) -> None:
    datadog.script(reply)
    records = usages(3) if kind is Kind.USAGE else events(3)
    with pytest.raises(RetryableError) as caught:
        await connectors().send(batch_of(*records))

    assert caught.value.http_status == reply.status
    assert caught.value.retry_after == retry_after
    assert len(datadog.requests) == 1  # the connector leaves retrying to the engine


async def test_400_is_fatal_and_not_retried(datadog: FakeDatadog, connectors: MakeDatadog) -> None:
    datadog.script(Reply(400, b'{"errors":["Payload formatting issue"]}'))
    with pytest.raises(FatalError, match="Payload formatting issue") as caught:
        await connectors().send(batch_of(*usages(2)))

    assert caught.value.http_status == 400
    assert len(datadog.requests) == 1


async def test_a_failure_after_some_requests_went_returns_only_the_rest_for_retry(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    items = [*usages(4), *events(3)]
    batch = batch_of(*items)
    connector = connectors()
    datadog.script(Reply(202, b'{"errors":[]}'), Reply(503))  # series taken, logs not

    result = await connector.send(batch)

    assert list(result.retry) == [4, 5, 6]
    assert list(result.rejected) == []
    retry = Batch(
        batch.key,
        [batch.payloads[i] for i in result.retry],
        [batch.kinds[i] for i in result.retry],
        [batch.offsets[i] for i in result.retry],
    )
    again = await connector.send(retry)
    assert (list(again.retry), again.http_status) == ([], 202)
    assert [r.path for r in datadog.requests] == [SERIES, LOGS, LOGS]  # series sent once
    assert [log["id"] for log in datadog.logs()] == [e["id"] for _, e in items[4:]]


async def test_an_unreachable_datadog_is_retryable_and_recovers(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    connector = connectors()
    await datadog.close()
    with pytest.raises(RetryableError, match="network error"):
        await connector.send(batch_of(*events(1)))

    await datadog.start()
    assert (await connector.send(batch_of(*events(1)))).http_status == 202


async def test_a_same_origin_redirect_is_followed_another_host_is_refused(
    datadog: FakeDatadog, connectors: MakeDatadog
) -> None:
    connector = connectors()
    datadog.script(Reply.redirect(datadog.url + LOGS + "?moved=1", 307))
    assert (await connector.send(batch_of(*events(1)))).http_status == 202
    assert [r.path for r in datadog.requests] == [LOGS, LOGS + "?moved=1"]

    async with Receiver() as elsewhere:
        datadog.script(Reply.redirect(elsewhere.url + LOGS, 307))
        with pytest.raises(FatalError, match="another host"):
            await connector.send(batch_of(*events(1)))
        assert elsewhere.requests == []  # the key never left for the other host


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "site"),
    [
        ("US", "datadoghq.com"),
        ("US3", "us3.datadoghq.com"),
        ("US5", "us5.datadoghq.com"),
        ("EU", "datadoghq.eu"),
        ("US1FED", "ddog-gov.com"),
        ("AP1", "ap1.datadoghq.com"),
    ],
)
def test_each_region_sends_to_its_site(region: str, site: str) -> None:
    config = DatadogConfig(api_key=DATADOG_API_KEY, region=region)
    assert config.series_url == f"https://api.{site}/api/v2/series"
    assert config.logs_url == f"https://http-intake.logs.{site}/api/v2/logs"
    assert config.validate_url == f"https://api.{site}/api/v1/validate"


def test_a_base_url_replaces_both_hosts() -> None:
    config = DatadogConfig(api_key="k", region="EU", base_url="https://dd-proxy.example/")
    assert config.series_url == "https://dd-proxy.example/api/v2/series"
    assert config.logs_url == "https://dd-proxy.example/api/v2/logs"


async def test_the_connector_declares_its_rendering_and_batching(
    connectors: MakeDatadog,
) -> None:
    connector = connectors()
    assert connector.rendering == Rendering(Version.NEW)
    assert (connector.max_batch, connector.linger_secs) == (1000, None)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"region": "MARS"}, ValueError),
        ({"api_key": ""}, ValueError),
        ({"api_key": "abc\r\nX-Injected: 1"}, ValueError),
        ({"base_url": "http://127.0.0.1:9"}, PrivateDestinationError),
        ({"base_url": "http://localhost:9"}, PrivateDestinationError),
    ],
)
def test_build_refuses_bad_config(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        DatadogConfig(**{"api_key": DATADOG_API_KEY, **options}).build()


def test_the_api_key_is_not_in_the_repr() -> None:
    assert DATADOG_API_KEY not in repr(DatadogConfig(api_key=DATADOG_API_KEY))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("endpoint_name", "Truck 17 / Hall B", "endpoint_name:truck_17_/_hall_b"),
        ("organisation_name", "ACME, Inc. (EU)", "organisation_name:acme_inc._eu"),
        ("operator_name", "Telefónica", "operator_name:telefónica"),
        ("operator_name", "AT&T", "operator_name:at_t"),
        ("endpoint_name", "a__b  c", "endpoint_name:a_b_c"),
        ("endpoint_name", "ends with:", "endpoint_name:ends_with"),
        ("endpoint_id", 17, "endpoint_id:17"),
        ("alert", True, "alert:true"),
        ("endpoint_name", "x" * 300, "endpoint_name:" + "x" * (200 - len("endpoint_name:"))),
        ("endpoint_name", None, None),
        ("endpoint_name", "", None),
        ("endpoint_name", "€€", None),
    ],
)
def test_tag_makes_valid_datadog_tags(key: str, value: object, expected: str | None) -> None:
    result = tag(key, value)
    assert result == expected
    assert result is None or valid_tag(result)
