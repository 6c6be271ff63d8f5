"""The daemon delivering to Kinesis and S3 (API.md §3, §6; DESIGN.md §1, §4): ``streamer run``
as a real subprocess, moto in server mode on loopback, the real aiobotocore client in between,
each stream acting as its customer's role (STS ``AssumeRole`` with ``ExternalId=org-1``).

The daemon reaches moto through ``AWS_ENDPOINT_URL`` and, where a test needs to see or bend the
traffic, through ``AwsProxy`` (``AWS_ENDPOINT_URL_<SERVICE>``). What landed is read back as the
``admin`` user, straight from moto: Kinesis with GetShardIterator/GetRecords, S3 object by
object, and compared byte for byte with what the format layer renders for the same records.

Where moto is not AWS, the proxy plays AWS's part: moto never throttles, so partial
``PutRecords`` failures are injected on the wire; moto hands out credentials for a role that
does not exist (and then fails the next call with a 500), so AWS's ``AccessDenied`` for it is
answered by the proxy; a crash with a ``PutObject`` in flight is made exact by holding that
request in the proxy while the daemon is killed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
import pytest
from aiohttp import web

from connectors.s3 import object_key
from schemas import Kind, Record, Version, csv_row, dumps, read_csv, render_csv
from streamer.simulate import Fleet
from tests.aws import (
    ACCOUNT_ID,
    BUCKET,
    REGION,
    Aws,
    Seen,
    read_bucket,
    read_stream,
    sts_error,
    trust_policy,
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

RUNNING, ERROR = 1, 3
STREAM = "data-stream"


# --- helpers ------------------------------------------------------------------------------------


async def create_kinesis_stream(aws: Aws, name: str = STREAM, shards: int = 2) -> None:
    async with aws.account.client("kinesis") as kinesis:
        await kinesis.create_stream(StreamName=name, ShardCount=shards)
        waiter = kinesis.get_waiter("stream_exists")
        await waiter.wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


async def create_bucket(aws: Aws) -> None:
    async with aws.account.client("s3") as s3:
        await s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )


async def landed(aws: Aws, name: str = STREAM) -> list[bytes]:
    """Every record's data in the Kinesis stream, shard after shard."""
    async with aws.account.client("kinesis") as kinesis:
        shards = await read_stream(kinesis, name)
    return [data for records in shards.values() for _, data in records]


async def bucket(aws: Aws) -> dict[str, bytes]:
    async with aws.account.client("s3") as s3:
        return await read_bucket(s3, BUCKET)


def kinesis_credentials(aws: Aws, **more: Any) -> dict[str, Any]:
    return {"region": REGION, "stream_name": STREAM, "role_arn": aws.account.role_arn, **more}


def s3_credentials(aws: Aws, **more: Any) -> dict[str, Any]:
    return {"region": REGION, "bucket_name": BUCKET, "role_arn": aws.account.role_arn, **more}


async def ingest(daemon: Daemon, records: list[Record], kind: Kind) -> list[int]:
    body = ndjson(records, kind, Version.NEW)
    await daemon.ingest_ok(kind, body, len(records), ndjson=True)
    return ids_of(records)


def id_of(payload: bytes) -> int:
    identifier: int = orjson.loads(payload)["id"]
    return identifier


# --- 1. every kind and version, byte for byte ---------------------------------------------------

PER_KIND = 60


@pytest.mark.parametrize("version", list(Version))
async def test_each_kind_and_version_lands_in_kinesis_and_s3_as_rendered(
    aws: Aws, start_daemon: StartDaemon, version: Version
) -> None:
    await create_kinesis_stream(aws)
    await create_bucket(aws)
    await aws.moto.enforce_iam()  # signatures, policies and the role's trust policy checked
    daemon = await start_daemon(**aws.account.environment(STS=aws.proxy.url))
    kinesis_id = await daemon.create_destination_stream(
        "AwsKinesis", kinesis_credentials(aws), version=version
    )
    # one file per kind: the batch is cut when it holds every record, well before the rotation
    s3_id = await daemon.create_destination_stream(
        "S3", s3_credentials(aws, flush_size=2 * PER_KIND), version=version
    )
    records = {kind: fleet_records(10 + index, PER_KIND, kind) for index, kind in enumerate(Kind)}
    for kind, batch in records.items():  # events take log offsets 1..60, usage 61..120
        await ingest(daemon, batch, kind)

    await daemon.settled(kinesis_id, 2 * PER_KIND)
    await daemon.settled(s3_id, 2 * PER_KIND)

    expected = {
        record["id"]: dumps(record, kind, version)
        for kind, batch in records.items()
        for record in batch
    }
    payloads = await landed(aws)
    assert len(payloads) == len(expected)
    assert {id_of(payload): payload for payload in payloads} == expected

    files = {}
    first_offset = 1
    for kind, batch in records.items():
        last_offset = first_offset + len(batch) - 1
        first_row = csv_row(batch[0], kind, version).encode()
        key = object_key("", kind, version, first_row, first_offset, last_offset)
        files[key] = render_csv(batch, kind, version).encode()
        first_offset = last_offset + 1
    assert await bucket(aws) == files

    # Each stream acts as the role, with its organisation's external id and its own session.
    assumed = [parse_qs(seen.body.decode()) for seen in aws.proxy.seen("AssumeRole")]
    assert sorted((a["RoleArn"], a["ExternalId"], a["RoleSessionName"]) for a in assumed) == [
        ([aws.account.role_arn], ["org-1"], [f"streamer-{stream_id}"])
        for stream_id in sorted((kinesis_id, s3_id))
    ]


# --- 2. partial failures of PutRecords ----------------------------------------------------------

THROTTLED = 1500  # three batches of 500 (one PutRecords call each, before the retries)
CODES = ("ProvisionedThroughputExceededException", "InternalFailure")


class Throttle:
    """``AwsProxy.fail_entries`` that fails every third entry of every call, as long as that
    entry's record has failed fewer than twice; it keeps what each call carried and which of its
    entries failed."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[bytes], list[int]]] = []
        self._failures: Counter[bytes] = Counter()

    def __call__(self, entries: list[dict[str, Any]]) -> dict[int, str]:
        data = [base64.b64decode(entry["Data"]) for entry in entries]
        failing = {
            i: CODES[i // 3 % 2] for i in range(0, len(data), 3) if self._failures[data[i]] < 2
        }
        self._failures.update(data[i] for i in failing)
        self.calls.append((data, sorted(failing)))
        return failing

    def sent(self) -> Counter[bytes]:
        return Counter(d for data, _ in self.calls for d in data)

    def failed(self) -> Counter[bytes]:
        return Counter(data[i] for data, failed in self.calls for i in failed)


async def test_only_the_failed_entries_are_sent_again_and_each_record_lands_once(
    aws: Aws, start_daemon: StartDaemon
) -> None:
    await create_kinesis_stream(aws)
    throttle = Throttle()
    aws.proxy.fail_entries = throttle
    daemon = await start_daemon(**aws.account.environment(KINESIS=aws.proxy.url))
    stream_id = await daemon.create_destination_stream("AwsKinesis", kinesis_credentials(aws))
    records = fleet_records(20, THROTTLED, Kind.EVENT)
    expected = Counter(dumps(record, Kind.EVENT, Version.NEW) for record in records)

    await ingest(daemon, records, Kind.EVENT)  # the very first call is partly throttled too

    stream = await daemon.settled(stream_id, THROTTLED)  # each record counted once
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None
    assert Counter(await landed(aws)) == expected  # each record once, none lost

    # Each call after a partial failure carried exactly the entries that failed, in order ...
    calls = throttle.calls
    for (data, failed), (retried, _) in itertools.pairwise(calls):
        if failed:
            assert retried == [data[i] for i in failed]
    # ... so each record was sent once, and once more for every time it failed.
    assert throttle.sent() == expected + throttle.failed()
    assert sum(1 for _, failed in calls if failed) >= 6  # three batches, each failing twice
    assert sum(throttle.failed().values()) > THROTTLED // 3


# --- 3. the Kinesis stream deleted under a running stream ---------------------------------------

RETRY_WINDOW_SECS = 4.0


async def test_a_deleted_kinesis_stream_fails_after_the_window_and_a_restart_delivers_the_backlog(
    aws: Aws, start_daemon: StartDaemon
) -> None:
    """Seed 003, Kinesis error behaviour: after successful transmissions a stream that becomes
    unavailable fails only after retries (the window), not at once."""
    await create_kinesis_stream(aws)
    daemon = await start_daemon(
        **aws.account.environment(),
        STREAMER_RETRY_MAX_SECS=str(RETRY_WINDOW_SECS),
        STREAMER_RETRY_CAP_SECS="0.5",
    )
    stream_id = await daemon.create_destination_stream("AwsKinesis", kinesis_credentials(aws))
    before = await ingest(daemon, fleet_records(30, 40, Kind.EVENT), Kind.EVENT)
    await daemon.settled(stream_id, len(before))
    async with aws.account.client("kinesis") as kinesis:
        await kinesis.delete_stream(StreamName=STREAM)

    failing_since = time.monotonic()  # the first failed send comes after this
    failing = await ingest(daemon, fleet_records(31, 25, Kind.USAGE), Kind.USAGE)

    async def failed() -> dict[str, Any] | None:
        stream = await daemon.stream(stream_id)
        return stream if stream["status"]["id"] == ERROR else None

    stream = await eventually(
        failed, RETRY_WINDOW_SECS + 20, what="Error after the window", interval_secs=API_POLL_SECS
    )
    assert time.monotonic() - failing_since >= RETRY_WINDOW_SECS
    retries = [
        line
        for line in daemon.output
        if '"send failed, retrying"' in line and "ResourceNotFoundException" in line
    ]
    assert len(retries) >= 2
    error = stream["error"]
    assert error["message"].startswith("Kinesis PutRecords: ResourceNotFoundException: ")
    assert STREAM in error["message"]
    assert error["http_status"] == 400
    assert stream["stats"]["delivered_records"] == len(before)
    assert stream["stats"]["last_result_code"] == 400

    # The stream's records keep coming while it is in Error; none is lost.
    backlog = failing + await ingest(daemon, fleet_records(32, 35, Kind.EVENT), Kind.EVENT)
    assert (await daemon.stream(stream_id))["stats"]["pending_records"] == len(backlog)
    await create_kinesis_stream(aws)
    response = await daemon.request("POST", f"/api/v2/data_stream/{stream_id}/restart")
    assert response.status == 202, response.text

    stream = await daemon.settled(stream_id, len(before) + len(backlog))
    assert stream["status"]["id"] == RUNNING
    assert stream["error"] is None
    assert sorted(id_of(payload) for payload in await landed(aws)) == sorted(backlog)


# --- 4. kill -9 during S3 delivery --------------------------------------------------------------

CRASH_TOTAL = 20_000
CRASH_REQUEST = 250  # records per ingest request, the kinds alternating: batches mix them
FLUSH_SIZE = 100  # the smallest file the API allows is 10 records, the shortest rotation 10 s
KILL_AT_PUT = 25  # the PutObject in flight when the daemon is killed


def crash_records() -> list[tuple[Kind, Record]]:
    """``CRASH_TOTAL`` records of organisation 1 in ingest (= log) order, kinds alternating
    every ``CRASH_REQUEST`` records."""
    fleet = Fleet(40, organisations=1)
    kinds = [Kind.EVENT, Kind.USAGE]
    found = []
    for index in range(CRASH_TOTAL):
        kind = kinds[index // CRASH_REQUEST % 2]
        found.append((kind, fleet.event() if kind is Kind.EVENT else fleet.usage()))
    return found


def expected_files(records: list[tuple[Kind, Record]], batches: Iterable[int]) -> dict[str, bytes]:
    """The bucket once ``records`` (log offsets from 1) are delivered in batches of the given
    sizes: one file per kind per batch, named by connectors/s3.py, rendered by the format
    layer."""
    files = {}
    start = 0
    for size in batches:
        for kind in Kind:
            rows = [
                (start + i + 1, record)
                for i, (k, record) in enumerate(records[start : start + size])
                if k is kind
            ]
            if rows:
                first_row = csv_row(rows[0][1], kind, Version.NEW).encode()
                key = object_key("", kind, Version.NEW, first_row, rows[0][0], rows[-1][0])
                files[key] = render_csv((r for _, r in rows), kind, Version.NEW).encode()
        start += size
    return files


class HoldPut:
    """``AwsProxy.hold`` that keeps the ``nth`` PUT in flight until ``release``, then forwards
    it to moto (the object is written, but its answer reaches a dead daemon) or drops it."""

    def __init__(self, nth: int, forward: bool) -> None:
        self.nth = nth
        self.forward = forward
        self.puts = 0
        self.key = ""
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, seen: Seen) -> bool:
        if seen.method != "PUT":
            return True
        self.puts += 1
        if self.puts != self.nth:
            return True
        self.key = s3_key(seen)
        self.held.set()
        await self.release.wait()
        return self.forward


def s3_key(seen: Seen) -> str:
    return seen.path.split("?")[0].removeprefix(f"/{BUCKET}/")


async def object_count(aws: Aws) -> int:
    async with aws.account.client("s3") as s3:
        listed = await s3.list_objects_v2(Bucket=BUCKET)
        count: int = listed["KeyCount"]
        return count


async def objects_are(aws: Aws, count: int) -> None:
    async def reached() -> bool:
        return await object_count(aws) == count

    await eventually(reached, what=f"{count} objects in the bucket")


async def caught_up(daemon: Daemon, stream_id: int) -> dict[str, Any]:
    """Wait until the stream has no record left to deliver; return it."""

    async def done() -> dict[str, Any] | None:
        stream = await daemon.stream(stream_id)
        return stream if stream["stats"]["pending_records"] == 0 else None

    found: dict[str, Any] = await eventually(
        done, 90, what=f"stream {stream_id}: nothing pending", interval_secs=0.2
    )
    return found


def puts_of(aws: Aws, key: str) -> int:
    return [s3_key(seen) for seen in aws.proxy.requests if seen.method == "PUT"].count(key)


@pytest.mark.parametrize(
    "forward",
    [
        pytest.param(True, id="the object written, its answer lost"),
        pytest.param(False, id="the object never written"),
    ],
)
async def test_kill_9_during_s3_delivery_leaves_every_record_in_the_bucket_exactly_once(
    aws: Aws, start_daemon: StartDaemon, forward: bool
) -> None:
    await create_bucket(aws)
    daemon = await start_daemon(**aws.account.environment(S3=aws.proxy.url), STREAMER_SYNC="full")
    records = crash_records()
    for start in range(0, CRASH_TOTAL, CRASH_REQUEST):
        kind = records[start][0]
        await ingest(daemon, [r for _, r in records[start : start + CRASH_REQUEST]], kind)
    expected = expected_files(records, [FLUSH_SIZE] * (CRASH_TOTAL // FLUSH_SIZE))
    hold = HoldPut(KILL_AT_PUT, forward)
    aws.proxy.hold = hold
    stream_id = await daemon.create_destination_stream(
        "S3",
        s3_credentials(aws, flush_size=FLUSH_SIZE, rotate_interval=10_000),
        stream_historic_data=True,
    )

    # Killed with a PutObject in flight, after the objects before it were written.
    await eventually(hold.held.is_set, 60, what=f"PUT number {KILL_AT_PUT} in flight")
    await daemon.kill9()
    hold.release.set()
    # Every PUT before the held one was answered (the daemon writes one file at a time).
    before_restart = KILL_AT_PUT if forward else KILL_AT_PUT - 1
    await objects_are(aws, before_restart)
    assert before_restart < len(expected)

    await daemon.restart()

    stream = await caught_up(daemon, stream_id)
    files = await bucket(aws)
    ids: Counter[int] = Counter()
    for key, body in files.items():
        rows = list(read_csv(io.StringIO(body.decode(), newline="")))
        assert 1 <= len(rows) <= FLUSH_SIZE, key
        ids.update(row["id"] for row in rows)
    assert [i for i, n in ids.items() if n > 1] == [], "records written twice"
    assert set(ids) == {record["id"] for _, record in records}, "records missing"
    assert files == expected  # byte for byte, every object named as connectors/s3.py says
    assert puts_of(aws, hold.key) == 2  # the held file sent again after the restart, same key
    assert stream["status"]["id"] == RUNNING
    assert stream["stats"]["delivered_records"] == CRASH_TOTAL


async def test_a_file_cut_by_the_rotation_is_cut_the_same_after_a_kill(
    aws: Aws, start_daemon: StartDaemon
) -> None:
    """A file the rotation cut short (60 of 100 records) is written, but the daemon dies
    before it hears so, and more records arrive meanwhile: after the restart the same 60
    records make the same file again (the batch is cut where it was), not a file of 100 that
    would hold the 60 a second time under another name."""
    await create_bucket(aws)
    daemon = await start_daemon(**aws.account.environment(S3=aws.proxy.url), STREAMER_SYNC="full")
    hold = HoldPut(1, forward=True)
    aws.proxy.hold = hold
    stream_id = await daemon.create_destination_stream(
        "S3", s3_credentials(aws, flush_size=FLUSH_SIZE, rotate_interval=10_000)
    )
    short = fleet_records(60, 60, Kind.EVENT)
    await ingest(daemon, short, Kind.EVENT)
    await eventually(hold.held.is_set, 30, what="the file of 60 records, cut by the rotation")
    more = fleet_records(61, FLUSH_SIZE, Kind.EVENT)
    await ingest(daemon, more, Kind.EVENT)

    await daemon.kill9()
    hold.release.set()
    await objects_are(aws, 1)
    await daemon.restart()

    stream = await caught_up(daemon, stream_id)
    records = [(Kind.EVENT, record) for record in short + more]
    assert await bucket(aws) == expected_files(records, [len(short), len(more)])
    assert puts_of(aws, hold.key) == 2
    assert stream["stats"]["delivered_records"] == len(records)


# --- 5. a role the service cannot assume ---------------------------------------------------------

SERVICE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/streamer"
NOT_TRUSTING = f"arn:aws:iam::{ACCOUNT_ID}:role/not-trusting-us"
MISSING = f"arn:aws:iam::{ACCOUNT_ID}:role/no-such-role"
REFUSED = 10  # S3's smallest file: the batch is cut at once rather than after the rotation


def refuse_missing_role(seen: Seen) -> web.Response | None:
    """AWS's answer to AssumeRole of a role that does not exist, which moto does not give."""
    if seen.action == "AssumeRole" and quote(MISSING, safe="").encode() in seen.body:
        return sts_error(
            403,
            "AccessDenied",
            f"User: {SERVICE_ARN} is not authorized to perform: sts:AssumeRole "
            f"on resource: {MISSING}",
        )
    return None


def organisation_records(organisation: int, count: int) -> list[Record]:
    fleet = Fleet(50, organisations=2)
    records: list[Record] = []
    while len(records) < count:
        record = fleet.event()
        if record["organisation"]["id"] == organisation:
            records.append(record)
    return records


@pytest.mark.parametrize(
    ("role_arn", "organisation", "refusal"),
    [
        pytest.param(
            NOT_TRUSTING,
            1,
            f"User: {SERVICE_ARN} is not authorized to perform: sts:AssumeRole",
            id="a role that does not trust the service",
        ),
        pytest.param(
            None,  # the account's role, which trusts org-1 only
            2,
            f"User: {SERVICE_ARN} is not authorized to perform: sts:AssumeRole",
            id="the external id of another organisation",
        ),
        pytest.param(
            MISSING,
            1,
            f"User: {SERVICE_ARN} is not authorized to perform: sts:AssumeRole "
            f"on resource: {MISSING}",
            id="a role that does not exist (AWS's answer, from the proxy)",
        ),
    ],
)
async def test_a_role_that_cannot_be_assumed_puts_both_destinations_in_error(
    aws: Aws, start_daemon: StartDaemon, role_arn: str | None, organisation: int, refusal: str
) -> None:
    role_arn = role_arn or aws.account.role_arn
    await create_kinesis_stream(aws)
    await create_bucket(aws)
    async with aws.account.client("iam") as iam:  # trusts someone else, with our external id
        await iam.create_role(
            RoleName="not-trusting-us",
            AssumeRolePolicyDocument=trust_policy(f"arn:aws:iam::{ACCOUNT_ID}:user/admin", "org-1"),
        )
    await aws.moto.enforce_iam()
    aws.proxy.answer = refuse_missing_role
    proxy = aws.proxy.url
    daemon = await start_daemon(**aws.account.environment(STS=proxy, KINESIS=proxy, S3=proxy))
    owner = {"id": organisation}
    kinesis_id = await daemon.create_destination_stream(
        "AwsKinesis", kinesis_credentials(aws, role_arn=role_arn), organisation=owner
    )
    s3_id = await daemon.create_destination_stream(
        "S3", s3_credentials(aws, role_arn=role_arn, flush_size=REFUSED), organisation=owner
    )
    records = organisation_records(organisation, REFUSED)

    await ingest(daemon, records, Kind.EVENT)

    row = csv_row(records[0], Kind.EVENT, Version.NEW).encode()
    key = object_key("", Kind.EVENT, Version.NEW, row, 1, REFUSED)
    cannot = f"role {role_arn} (external id org-{organisation}) cannot be assumed: AccessDenied"
    expected = {
        kinesis_id: f"Kinesis PutRecords: {cannot}: {refusal}",
        s3_id: f"S3 PutObject {key}: {cannot}: {refusal}",
    }
    for stream_id, message in expected.items():
        stream = await daemon.reaches_status(stream_id, ERROR)
        assert stream["error"]["message"] == message
        assert stream["error"]["http_status"] == 403
        assert stream["stats"]["delivered_records"] == 0
        assert stream["stats"]["pending_records"] == REFUSED
        assert aws.account.service.secret_access_key not in stream["error"]["message"]
    assumed = [parse_qs(seen.body.decode()) for seen in aws.proxy.seen("AssumeRole")]
    assert {(a["RoleArn"][0], a["ExternalId"][0]) for a in assumed} == {
        (role_arn, f"org-{organisation}")
    }
    assert [seen.action for seen in aws.proxy.requests if seen.action != "AssumeRole"] == []


@pytest.mark.parametrize(
    ("connection_type", "credentials"),
    [("AwsKinesis", kinesis_credentials), ("S3", s3_credentials)],
)
async def test_a_role_arn_that_is_no_role_arn_is_refused_at_create(
    aws: Aws, start_daemon: StartDaemon, connection_type: str, credentials: Callable[..., Any]
) -> None:
    daemon = await start_daemon(**aws.account.environment())
    seed_example = "arn:aws:iam:1234567890:role/role_for_kinesis_data_stream"  # 10 digits, ':'
    body = {
        "name": "wrong role",
        "data_stream_type": {"id": 3},
        "destination": {
            "connection_type": connection_type,
            "credentials": credentials(aws, role_arn=seed_example),
        },
        "organisation": {"id": 1},
    }

    response = await daemon.request("POST", "/api/v2/data_stream", json=body)

    assert response.status == 422
    assert response.json() == {
        "error_code": 422,
        "error_token": "unprocessable_entity",
        "message": "the data stream is not valid",
        "errors": [
            {
                "field": "destination.credentials.role_arn",
                "message": "Value error, is not an IAM role ARN: expected"
                " arn:aws:iam::<12-digit account id>:role/<name>",
            }
        ],
    }
    assert (await daemon.request("GET", "/api/v2/data_stream")).json() == []
