"""The Kinesis connector against moto in server mode, through the real aiobotocore client
(connectors/kinesis.py, connectors/aws.py; DESIGN.md §4–5).

Every request of the connector goes through ``AwsProxy`` (tests/aws.py), an aiohttp reverse
proxy that records it and, where a test asks, answers or fails entries itself: partial failures
are injected there, on the wire, because moto never throttles. Records are read back with
GetShardIterator/GetRecords as the ``admin`` user, straight from moto.
"""

from __future__ import annotations

import base64
import re
import socket
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from connectors.base import (
    Batch,
    DeliveryError,
    DestinationMissing,
    FatalError,
    RetryableError,
    SendResult,
)
from connectors.kinesis import MAX_CALL_BYTES, MAX_RECORD_BYTES, Kinesis, KinesisConfig
from schemas import Kind, Record, Version, dumps
from tests.aws import ROLE_NAME, Aws, Seen, kinesis_error, read_stream, trust_policy
from tests.schemas.samples import EVENT, USAGE

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    # aiobotocore hands aiohttp every request body as bytes, and aiohttp warns about bodies
    # over 1 MiB; Kinesis calls of up to 5 MiB are the point of some tests here.
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]

STREAM = "demo-stream"
STREAM_ID = 7

MakeKinesis = Callable[..., Kinesis]


@pytest.fixture
async def kinesis(aws: Aws) -> AsyncIterator[MakeKinesis]:
    """Build connectors for the test's account (``sdk_max_attempts=1`` unless told: moto never
    fails by itself, and botocore's own backoff would only slow injected failures down) and
    close every one of them after the test."""
    built: list[Kinesis] = []

    def make(**options: Any) -> Kinesis:
        settings: dict[str, Any] = {
            "region": "eu-west-1",
            "stream_name": STREAM,
            "role_arn": aws.account.role_arn,
            "organisation": aws.account.organisation,
            "stream_id": STREAM_ID,
            "sdk_max_attempts": 1,
        }
        connector = KinesisConfig(**(settings | options)).build()
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


async def create_stream(aws: Aws, name: str = STREAM, shards: int = 1) -> None:
    async with aws.account.client("kinesis") as admin:
        await admin.create_stream(StreamName=name, ShardCount=shards)


async def stream_records(aws: Aws, name: str = STREAM) -> dict[str, list[tuple[str, bytes]]]:
    async with aws.account.client("kinesis") as admin:
        return await read_stream(admin, name)


async def landed(aws: Aws, name: str = STREAM) -> list[bytes]:
    """Every record's data, shard after shard, each shard in sequence order."""
    return [data for records in (await stream_records(aws, name)).values() for _, data in records]


def batch(payloads: list[bytes], first_offset: int = 1000) -> Batch:
    offsets = list(range(first_offset, first_offset + len(payloads)))
    return Batch(
        f"{STREAM_ID}-{offsets[0]}-{offsets[-1]}", payloads, ["event"] * len(payloads), offsets
    )


def padded(index: int, size: int, endpoint: int = 1) -> bytes:
    """A JSON record of exactly ``size`` bytes for ``endpoint``."""
    head = b'{"id":%d,"endpoint":{"id":%d},"pad":"' % (index, endpoint)
    return head + b"x" * (size - len(head) - 2) + b'"}'


async def deliver(connector: Kinesis, first: Batch, rounds: int = 5) -> list[SendResult]:
    """Send like the delivery engine: again with only the ``retry`` positions, same key."""
    results: list[SendResult] = []
    current = first
    for _ in range(rounds):
        result = await connector.send(current)
        results.append(result)
        if not result.retry:
            return results
        current = Batch(
            current.key,
            [current.payloads[i] for i in result.retry],
            [current.kinds[i] for i in result.retry],
            [current.offsets[i] for i in result.retry],
        )
    raise AssertionError(f"still retrying after {rounds} rounds: {results}")


async def invoke(connector: Kinesis, call: str, records: Batch) -> None:
    """``send`` the batch or run the ``healthcheck``."""
    if call == "send":
        await connector.send(records)
    else:
        await connector.healthcheck()


def put_records_sizes(seen: list[Seen]) -> list[tuple[int, int]]:
    """Per PutRecords call: how many entries, and their bytes as Kinesis counts them."""
    sizes = []
    for request in seen:
        records = request.json()["Records"]
        total = sum(len(base64.b64decode(r["Data"])) + len(r["PartitionKey"]) for r in records)
        sizes.append((len(records), total))
    return sizes


# --- delivery ------------------------------------------------------------------------------

RECORDS: list[tuple[Kind, Record, str]] = [
    (Kind.EVENT, EVENT, "1"),  # endpoint.id
    (Kind.EVENT, {**EVENT, "id": 69536, "endpoint": None}, "110"),  # then sim.id
    (Kind.EVENT, {**EVENT, "id": 69537, "endpoint": None, "sim": None}, "69537"),  # then id
    (Kind.USAGE, USAGE, "1234"),
    (Kind.USAGE, {**USAGE, "id": 1618839102883, "endpoint": None}, "1234"),  # sim.id
    (Kind.USAGE, {**USAGE, "id": 1618839102884, "endpoint": None, "sim": None}, "1618839102884"),
]


@pytest.mark.parametrize("version", list(Version))
async def test_records_of_each_kind_and_version_land_as_sent(
    aws: Aws, kinesis: MakeKinesis, version: Version
) -> None:
    await create_stream(aws)
    connector = kinesis(version=version)
    payloads = [dumps(record, kind, version) for kind, record, _ in RECORDS]

    result = await connector.send(batch(payloads))

    assert result == SendResult(http_status=200)
    (shard,) = (await stream_records(aws)).values()
    assert shard == [(key, payload) for (_, _, key), payload in zip(RECORDS, payloads, strict=True)]
    assert connector.rendering.version is version
    assert connector.max_batch == 500


async def test_one_device_stays_on_one_shard_in_log_order(aws: Aws, kinesis: MakeKinesis) -> None:
    await create_stream(aws, shards=4)
    devices = [str(index % 5) for index in range(60)]
    payloads = [padded(index, 64, endpoint=int(device)) for index, device in enumerate(devices)]

    await kinesis().send(batch(payloads))

    shards_of: dict[str, set[str]] = defaultdict(set)
    read: dict[str, list[bytes]] = defaultdict(list)
    for shard, records in (await stream_records(aws)).items():
        for key, data in records:
            shards_of[key].add(shard)
            read[key].append(data)
    assert all(len(shards) == 1 for shards in shards_of.values()), shards_of
    assert len(set().union(*shards_of.values())) > 1  # the devices do spread over shards
    expected = {d: [p for p, of in zip(payloads, devices, strict=True) if of == d] for d in devices}
    assert read == expected


@pytest.mark.parametrize(
    ("count", "size", "calls"),
    [
        pytest.param(1001, 40, [500, 500, 1], id="500 records per call"),
        pytest.param(11, 700 * 1024, [7, 4], id="5 MiB per call"),
        pytest.param(6, MAX_RECORD_BYTES - 1, [5, 1], id="exactly 5 MiB in one call"),
    ],
)
async def test_a_batch_is_split_at_the_call_limits(
    aws: Aws, kinesis: MakeKinesis, count: int, size: int, calls: list[int]
) -> None:
    await create_stream(aws)
    payloads = [padded(index, size) for index in range(count)]

    result = await kinesis().send(batch(payloads))

    assert result == SendResult(http_status=200)
    sizes = put_records_sizes(aws.proxy.seen("PutRecords"))
    assert [n for n, _ in sizes] == calls
    assert all(total <= MAX_CALL_BYTES for _, total in sizes)
    assert await landed(aws) == payloads


async def test_a_record_over_1_mib_is_rejected_and_the_rest_delivered(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    key_bytes = 1  # partition key "1": endpoint 1
    payloads = [
        padded(0, 100),
        padded(1, MAX_RECORD_BYTES - key_bytes + 1),  # one byte over, with its partition key
        padded(2, MAX_RECORD_BYTES - key_bytes),  # exactly the limit
        padded(3, 100),
    ]

    result = await kinesis().send(batch(payloads))

    assert result.retry == ()
    assert [position for position, _ in result.rejected] == [1]
    assert "1048577 bytes" in result.rejected[0][1]
    assert "1048576" in result.rejected[0][1]
    assert await landed(aws) == [payloads[0], payloads[2], payloads[3]]


# --- partial failure -----------------------------------------------------------------------


def fail_first_call(
    positions: Mapping[int, str],
) -> Callable[[list[dict[str, Any]]], Mapping[int, str]]:
    """Fail these entries of the first PutRecords call only; later calls go through."""
    calls = 0

    def fail(records: list[dict[str, Any]]) -> Mapping[int, str]:
        nonlocal calls
        calls += 1
        return positions if calls == 1 else {}

    return fail


async def test_only_the_failed_entries_are_sent_again(aws: Aws, kinesis: MakeKinesis) -> None:
    await create_stream(aws)
    payloads = [padded(index, 80, endpoint=index) for index in range(5)]
    throttled = "ProvisionedThroughputExceededException"
    aws.proxy.fail_entries = fail_first_call({1: throttled, 3: "InternalFailure"})

    results = await deliver(kinesis(), batch(payloads))

    assert [result.retry for result in results] == [(1, 3), ()]
    sent = [
        [base64.b64decode(r["Data"]) for r in s.json()["Records"]]
        for s in aws.proxy.seen("PutRecords")
    ]
    assert sent == [payloads, [payloads[1], payloads[3]]]
    assert Counter(await landed(aws)) == Counter(
        payloads
    )  # each exactly once: none lost, no duplicate


async def test_after_a_partial_failure_the_later_calls_wait_their_turn(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    payloads = [padded(index, 40) for index in range(700)]
    aws.proxy.fail_entries = fail_first_call({10: "ProvisionedThroughputExceededException"})

    results = await deliver(kinesis(), batch(payloads))

    assert results[0].retry == (10, *range(500, 700))
    assert [n for n, _ in put_records_sizes(aws.proxy.seen("PutRecords"))] == [500, 201]
    assert Counter(await landed(aws)) == Counter(payloads)


async def test_a_later_call_failing_as_a_whole_hands_back_only_its_records(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    payloads = [padded(index, 40) for index in range(700)]

    def second_call_fails(seen: Seen) -> Any:
        if seen.action == "PutRecords" and len(aws.proxy.seen("PutRecords")) == 2:
            return kinesis_error(500, "InternalFailure")
        return None

    aws.proxy.answer = second_call_fails

    results = await deliver(kinesis(), batch(payloads))

    assert results[0].retry == tuple(range(500, 700))
    assert Counter(await landed(aws)) == Counter(payloads)


async def test_a_permanent_error_of_one_record_is_fatal(aws: Aws, kinesis: MakeKinesis) -> None:
    await create_stream(aws)
    aws.proxy.fail_entries = fail_first_call({1: "AccessDeniedException"})

    with pytest.raises(FatalError) as caught:
        await kinesis().send(batch([padded(0, 50), padded(1, 50)], first_offset=3000))

    assert "AccessDeniedException" in caught.value.message
    assert "log offset 3001" in caught.value.message


# --- errors of whole calls -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "ProvisionedThroughputExceededException", RetryableError),
        (400, "ThrottlingException", RetryableError),
        (400, "LimitExceededException", RetryableError),
        (400, "KMSThrottlingException", RetryableError),
        (500, "InternalFailure", RetryableError),
        (503, "ServiceUnavailable", RetryableError),
        (400, "ResourceNotFoundException", DestinationMissing),
        (400, "AccessDeniedException", FatalError),
        (400, "KMSDisabledException", FatalError),
        (400, "KMSAccessDeniedException", FatalError),
        (400, "InvalidArgumentException", FatalError),
        (400, "ExpiredTokenException", FatalError),
    ],
)
async def test_whole_call_errors_map_onto_the_error_tree(
    aws: Aws, kinesis: MakeKinesis, status: int, code: str, error: type[DeliveryError]
) -> None:
    await create_stream(aws)
    aws.proxy.answer = lambda seen: (
        kinesis_error(status, code, "told to fail") if seen.action == "PutRecords" else None
    )

    with pytest.raises(DeliveryError) as caught:
        await kinesis().send(batch([padded(0, 50)]))

    assert type(caught.value) is error
    assert code in caught.value.message
    assert caught.value.http_status == status


async def test_botocore_retries_a_throttled_call_within_its_budget(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    answers = iter([kinesis_error(500, "InternalFailure")])
    aws.proxy.answer = lambda seen: next(answers, None) if seen.action == "PutRecords" else None

    result = await kinesis(sdk_max_attempts=2).send(batch([padded(0, 50)]))

    assert result == SendResult(http_status=200)
    assert len(aws.proxy.seen("PutRecords")) == 2
    assert await landed(aws) == [padded(0, 50)]


async def test_an_unreachable_endpoint_is_retryable(
    aws: Aws, kinesis: MakeKinesis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port that was just free, and is closed again
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", f"http://127.0.0.1:{port}")

    with pytest.raises(RetryableError, match="network error"):
        await kinesis().send(batch([padded(0, 50)]))


@pytest.mark.parametrize("call", ["send", "healthcheck"])
async def test_a_deleted_stream_is_fatal(aws: Aws, kinesis: MakeKinesis, call: str) -> None:
    await create_stream(aws)
    connector = kinesis()
    await connector.healthcheck()
    await connector.send(batch([padded(0, 50)]))
    async with aws.account.client("kinesis") as admin:
        await admin.delete_stream(StreamName=STREAM)

    with pytest.raises(FatalError) as caught:
        await invoke(connector, call, batch([padded(1, 50)]))

    assert "ResourceNotFoundException" in caught.value.message
    assert caught.value.http_status == 400


# --- the role ------------------------------------------------------------------------------


def assume_role_params(seen: Seen) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(seen.body.decode()).items()}


async def test_the_role_is_assumed_once_with_the_external_id_and_session_name(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    await aws.moto.enforce_iam()  # moto now checks signatures, policies and the trust policy
    connector = kinesis()

    await connector.healthcheck()
    for index in range(3):
        await connector.send(batch([padded(index, 50)], first_offset=index))

    (assume,) = aws.proxy.seen("AssumeRole")
    params = assume_role_params(assume)
    assert params["RoleArn"] == aws.account.role_arn
    assert params["ExternalId"] == "org-42"
    assert params["RoleSessionName"] == "streamer-7"
    assert (
        "AWS4-HMAC-SHA256 Credential=" + aws.account.service.access_key_id
        in assume.headers["Authorization"]
    )
    assert await landed(aws) == [padded(index, 50) for index in range(3)]


def expiring_in(minutes: float, *, every: bool = False) -> Callable[[Seen, bytes], bytes]:
    """Rewrite the first (or ``every``) AssumeRole answer so that its credentials expire in
    ``minutes``: how a test moves credentials into botocore's refresh windows without waiting."""
    rewritten = 0

    def rewrite(seen: Seen, body: bytes) -> bytes:
        nonlocal rewritten
        if seen.action != "AssumeRole" or (rewritten and not every):
            return body
        rewritten += 1
        soon = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        expiration = b"<Expiration>%s</Expiration>" % soon.encode()
        return re.sub(rb"<Expiration>[^<]*</Expiration>", expiration, body)

    return rewrite


async def test_role_credentials_are_refreshed_before_they_expire(
    aws: Aws, kinesis: MakeKinesis
) -> None:
    await create_stream(aws)
    await aws.moto.enforce_iam()
    aws.proxy.rewrite = expiring_in(12)  # inside botocore's 15-minute advisory window
    connector = kinesis()

    for index in range(3):
        await connector.send(batch([padded(index, 50)], first_offset=index))

    # the short-lived credentials are replaced before use, the hour-long ones are kept
    assert len(aws.proxy.seen("AssumeRole")) == 2
    assert await landed(aws) == [padded(index, 50) for index in range(3)]


@pytest.mark.parametrize(
    ("minutes_left", "outcome"),
    [
        pytest.param(12, "delivered", id="advisory refresh refused: current credentials kept"),
        pytest.param(5, "fatal", id="mandatory refresh refused: fatal"),
    ],
)
async def test_a_refused_refresh(
    aws: Aws, kinesis: MakeKinesis, minutes_left: float, outcome: str
) -> None:
    await create_stream(aws)
    await aws.moto.enforce_iam()
    aws.proxy.rewrite = expiring_in(minutes_left, every=True)  # always due for a refresh
    connector = kinesis()
    await connector.send(batch([padded(0, 50)]))
    assumed = len(aws.proxy.seen("AssumeRole"))
    async with aws.account.client("iam") as admin:  # the customer withdraws the trust
        await admin.update_assume_role_policy(
            RoleName=ROLE_NAME, PolicyDocument=trust_policy(aws.account.service_arn, "org-0")
        )

    if outcome == "delivered":
        result = await connector.send(batch([padded(1, 50)], first_offset=1))
        assert result == SendResult(200)
        assert await landed(aws) == [padded(0, 50), padded(1, 50)]
    else:
        with pytest.raises(FatalError) as caught:
            await connector.send(batch([padded(1, 50)], first_offset=1))
        assert "cannot be assumed: AccessDenied" in caught.value.message
        assert caught.value.http_status == 403
        assert len(aws.proxy.seen("PutRecords")) == 1
    assert len(aws.proxy.seen("AssumeRole")) > assumed  # a refresh was tried, and refused


@pytest.mark.parametrize("call", ["send", "healthcheck"])
@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param({"organisation": 43}, id="external id of another organisation"),
        pytest.param(
            {"role_arn": "arn:aws:iam::123456789012:role/not-trusting-us"},
            id="role that does not trust the service",
        ),
    ],
)
async def test_a_role_that_cannot_be_assumed_is_fatal(
    aws: Aws, kinesis: MakeKinesis, call: str, wrong: dict[str, Any]
) -> None:
    await create_stream(aws)
    async with aws.account.client("iam") as admin:
        await admin.create_role(
            RoleName="not-trusting-us",
            AssumeRolePolicyDocument=trust_policy("arn:aws:iam::123456789012:user/admin", "org-42"),
        )
    await aws.moto.enforce_iam()
    connector = kinesis(**wrong)

    with pytest.raises(FatalError) as caught:
        await invoke(connector, call, batch([padded(0, 50)]))

    message = caught.value.message
    assert (
        f"role {connector.config.role_arn} (external id org-{connector.config.organisation})"
        in message
    )
    assert "cannot be assumed: AccessDenied" in message
    assert caught.value.http_status == 403
    assert aws.account.service.secret_access_key not in message
    assert aws.proxy.seen("PutRecords") == []


async def test_without_credentials_of_its_own_the_service_fails_fatally(
    aws: Aws, kinesis: MakeKinesis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(FatalError, match="no AWS credentials of its own"):
        await kinesis().healthcheck()

    assert aws.proxy.requests == []


@pytest.mark.parametrize(
    "role_arn",
    [
        "arn:aws:iam:1234567890:role/role_for_kinesis_data_stream",  # the seed's example
        "arn:aws:iam::123456789012:user/streamer",
        "data-stream-writer",
    ],
)
def test_a_malformed_role_arn_is_refused_at_build(role_arn: str) -> None:
    config = KinesisConfig(
        region="eu-west-1", stream_name=STREAM, role_arn=role_arn, organisation=42, stream_id=7
    )
    with pytest.raises(ValueError, match="is not an IAM role ARN"):
        config.build()
