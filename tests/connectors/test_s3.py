"""The S3 connector against moto in server mode, through the real aiobotocore client
(connectors/s3.py, connectors/aws.py; FORMATS.md §4; DESIGN.md §4–5).

Objects are read back as the ``admin`` user straight from moto and compared byte for byte with
the CSV file expected: the exact header row, then the rows as the delivery engine renders them
(``schemas.csv_row``). Headers on the wire are read from ``AwsProxy``, which sits between the
connector and moto and, where a test asks, fails a ``PutObject`` itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from connectors.base import Batch, DestinationMissing, FatalError, Form, RetryableError, SendResult
from connectors.s3 import S3, S3Config, object_key
from schemas import Kind, Record, Version, csv_header, csv_row
from tests.aws import BUCKET, Aws, Seen, s3_error
from tests.schemas.samples import EVENT, USAGE

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

STREAM_ID = 7

MakeS3 = Callable[..., S3]


@pytest.fixture
async def s3(aws: Aws) -> AsyncIterator[MakeS3]:
    """Build connectors for the test's account, writing to ``BUCKET`` (created here), with one
    attempt per call unless told; close every one of them after the test."""
    async with aws.account.client("s3") as admin:
        await admin.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    built: list[S3] = []

    def make(**options: Any) -> S3:
        settings: dict[str, Any] = {
            "region": "eu-west-1",
            "bucket_name": BUCKET,
            "role_arn": aws.account.role_arn,
            "organisation": aws.account.organisation,
            "stream_id": STREAM_ID,
            "sdk_max_attempts": 1,
        }
        connector = S3Config(**(settings | options)).build()
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


# Log order interleaves the kinds; each file keeps its own kind's rows in log order.
RECORDS: list[tuple[int, Kind, Record]] = [
    (500, Kind.EVENT, EVENT),
    (501, Kind.USAGE, USAGE),
    (503, Kind.EVENT, {**EVENT, "id": 69536, "timestamp": "2020-11-10T09:00:00Z", "alert": False}),
    (504, Kind.USAGE, {**USAGE, "id": 1618839102883, "endpoint": None, "cost": 1e-07}),
    (507, Kind.EVENT, {**EVENT, "id": 69537, "description": 'say "hi", €', "endpoint": None}),
]


def batch_of(
    version: Version, records: list[tuple[int, Kind, Record]] = RECORDS, key: str = "7-500-507"
) -> Batch:
    return Batch(
        key,
        [csv_row(record, kind, version).encode() for _, kind, record in records],
        [str(kind) for _, kind, _ in records],
        [offset for offset, _, _ in records],
    )


def expected_file(kind: Kind, version: Version) -> bytes:
    rows = [csv_row(r, k, version) for _, k, r in RECORDS if k is kind]
    return (csv_header(kind, version) + "".join(rows)).encode()


# The keys written for RECORDS: the first event is 2020-11-10 08:59:19 at offset 500 (last 507),
# the first usage record 2021-04-19 13:31:42 at offset 501 (last 504).
KEYS = {
    Version.NEW: {
        Kind.EVENT: "events/2020/11/10/events_20201110_085919_500-507.csv",
        Kind.USAGE: "usage/2021/04/19/usage_20210419_133142_501-504.csv",
    },
    Version.MIGRATED: {
        Kind.EVENT: "events_20201110_085919.csv",
        Kind.USAGE: "cdr_20210419_133142.csv",
    },
    Version.OLD: {
        Kind.EVENT: "events_20201110_085919.csv",
        Kind.USAGE: "cdr_20210419_133142.csv",
    },
}
FIRST_COLUMNS = {
    (Kind.EVENT, True): b'"id","timestamp","event_type_id",',
    (Kind.EVENT, False): b'"id","timestamp","event_source_id",',
    (Kind.USAGE, True): b'"id","event_start_timestamp","event_stop_timestamp",',
    (Kind.USAGE, False): b'"id","start_timestamp","end_timestamp",',
}


async def objects(aws: Aws) -> dict[str, bytes]:
    """Every object of the bucket and its bytes as stored."""
    async with aws.account.client("s3") as admin:
        listed = await admin.list_objects_v2(Bucket=BUCKET)
        found = {}
        for item in listed.get("Contents", []):
            response = await admin.get_object(Bucket=BUCKET, Key=item["Key"])
            async with response["Body"] as body:
                found[item["Key"]] = await body.read()
        return found


async def head(aws: Aws, key: str) -> dict[str, Any]:
    async with aws.account.client("s3") as admin:
        response: dict[str, Any] = await admin.head_object(Bucket=BUCKET, Key=key)
        return response


def puts(aws: Aws) -> list[Seen]:
    return [seen for seen in aws.proxy.requests if seen.method == "PUT"]


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("version", list(Version))
async def test_each_kind_and_version_is_written_as_its_csv_file(
    aws: Aws, s3: MakeS3, version: Version, compression: str
) -> None:
    connector = s3(version=version, compression=compression, key_prefix="streams/7/")

    result = await connector.send(batch_of(version))

    assert result == SendResult(http_status=200)
    suffix = ".gz" if compression == "gzip" else ""
    stored = await objects(aws)
    assert sorted(stored) == sorted(f"streams/7/{key}{suffix}" for key in KEYS[version].values())
    for kind, key in KEYS[version].items():
        raw = stored[f"streams/7/{key}{suffix}"]
        content = gzip.decompress(raw) if compression == "gzip" else raw
        assert content == expected_file(kind, version)
        assert content.startswith(FIRST_COLUMNS[kind, version is not Version.NEW])
        assert content.count(b"\n") == 1 + sum(k is kind for _, k, _ in RECORDS)
        stat = await head(aws, f"streams/7/{key}{suffix}")
        assert stat["ContentType"] == "text/csv"
        assert stat.get("ContentEncoding") == ("gzip" if compression == "gzip" else None)


async def test_the_stream_settings_shape_the_batches(s3: MakeS3) -> None:
    connector = s3(flush_size=2500, rotate_interval_ms=45000, version=Version.MIGRATED)

    assert connector.max_batch == 2500
    assert connector.linger_secs == 45.0
    assert connector.rendering.form is Form.CSV
    assert connector.rendering.version is Version.MIGRATED


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_sending_a_batch_again_overwrites_its_objects(
    aws: Aws, s3: MakeS3, compression: str, version: Version
) -> None:
    connector = s3(compression=compression, version=version)
    first = batch_of(version)
    await connector.send(first)
    before = await objects(aws)

    await connector.send(first)  # a retry, or a re-send after a crash
    usage = [i for i, kind in enumerate(first.kinds) if kind == "usage"]
    await connector.send(  # the engine re-sending only the usage records
        Batch(
            first.key,
            [first.payloads[i] for i in usage],
            [first.kinds[i] for i in usage],
            [first.offsets[i] for i in usage],
        )
    )

    assert await objects(aws) == before
    assert len(before) == 2
    assert len(puts(aws)) == 5


def legacy_batch(first_offset: int, ids: range, second: str = "2020-11-10T08:59:19Z") -> Batch:
    """Events starting at ``first_offset``, every one in the same ``second``."""
    records = [(first_offset + n, Kind.EVENT, {**EVENT, "id": i, "timestamp": second})
               for n, i in enumerate(ids)]  # fmt: skip
    return batch_of(Version.MIGRATED, records, key=f"7-{first_offset}")


def legacy_file(batch: Batch) -> bytes:
    return csv_header(Kind.EVENT, Version.MIGRATED).encode() + b"".join(batch.payloads)


async def test_legacy_batches_starting_in_one_second_get_the_next_seconds(
    aws: Aws, s3: MakeS3
) -> None:
    batches = [legacy_batch(10 * n, range(100 * n, 100 * n + 3)) for n in range(1, 4)]
    connector = s3(version=Version.MIGRATED)
    for batch in batches:
        assert await connector.send(batch) == SendResult(http_status=200)

    assert await objects(aws) == {
        "events_20201110_085919.csv": legacy_file(batches[0]),
        "events_20201110_085920.csv": legacy_file(batches[1]),
        "events_20201110_085921.csv": legacy_file(batches[2]),
    }
    stat = await head(aws, "events_20201110_085920.csv")
    assert stat["Metadata"] == {"streamer-batch": f"{STREAM_ID}/20"}


@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_a_legacy_batch_re_sent_after_a_crash_overwrites_its_own_file(
    aws: Aws, s3: MakeS3, compression: str
) -> None:
    batches = [legacy_batch(10 * n, range(100 * n, 100 * n + 3)) for n in range(1, 4)]
    for batch in batches:
        await s3(version=Version.MIGRATED, compression=compression).send(batch)
    before = await objects(aws)

    # A new process knows nothing of the names it used: it finds its own file by asking S3.
    for batch in reversed(batches):
        await s3(version=Version.MIGRATED, compression=compression).send(batch)

    assert await objects(aws) == before
    assert len(before) == 3


async def test_a_legacy_name_taken_by_another_file_is_left_alone(aws: Aws, s3: MakeS3) -> None:
    async with aws.account.client("s3") as admin:
        await admin.put_object(Bucket=BUCKET, Key="events_20201110_085919.csv", Body=b"theirs")
    batch = legacy_batch(10, range(3))

    await s3(version=Version.MIGRATED).send(batch)
    await s3(version=Version.MIGRATED).send(batch)  # and again, as after a crash

    assert await objects(aws) == {
        "events_20201110_085919.csv": b"theirs",
        "events_20201110_085920.csv": legacy_file(batch),
    }


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "echoed"),
    [
        pytest.param({}, {"ServerSideEncryption": "AES256"}, id="AES256 by default"),
        pytest.param(
            {"server_side_encryption": "aws:kms", "kms_key_id": "alias/data-stream"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/data-stream"},
            id="KMS",
        ),
        pytest.param({"server_side_encryption": None}, {}, id="bucket default"),
    ],
)
@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_every_put_carries_md5_type_and_encryption(
    aws: Aws, s3: MakeS3, compression: str, options: dict[str, Any], echoed: dict[str, str]
) -> None:
    await s3(compression=compression, **options).send(batch_of(Version.NEW))

    wire = puts(aws)
    assert len(wire) == 2
    for seen in wire:
        body = seen.body
        assert seen.headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
        assert seen.headers["Content-Type"] == "text/csv"
        assert seen.headers.get("Content-Encoding") == ("gzip" if compression == "gzip" else None)
        assert seen.headers.get("x-amz-server-side-encryption") == echoed.get(
            "ServerSideEncryption"
        )
        if compression == "gzip":
            assert body[:2] == b"\x1f\x8b"
            assert body == gzip.compress(gzip.decompress(body), mtime=0)  # no clock inside
        key = seen.path.split("?")[0].removeprefix(f"/{BUCKET}/")
        stat = await head(aws, key)
        assert stat["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert {name: stat[name] for name in echoed} == echoed


# --- failures ------------------------------------------------------------------------------


def failing_puts(kind_name: str, status: int, code: str) -> Callable[[Seen], Any]:
    """Answer every PUT of the files whose name starts with ``kind_name`` with an error."""

    def answer(seen: Seen) -> Any:
        if seen.method == "PUT" and f"/{kind_name}_" in seen.path:
            return s3_error(status, code)
        return None

    return answer


async def test_a_failed_second_file_hands_back_only_its_records(aws: Aws, s3: MakeS3) -> None:
    connector = s3()
    first = batch_of(Version.NEW)
    aws.proxy.answer = failing_puts("usage", 503, "SlowDown")

    result = await connector.send(first)

    assert result.retry == (1, 3)
    assert sorted(await objects(aws)) == [KEYS[Version.NEW][Kind.EVENT]]
    aws.proxy.answer = None
    retried = Batch(first.key, [first.payloads[i] for i in result.retry], ["usage"] * 2, [501, 504])
    assert await connector.send(retried) == SendResult(http_status=200)
    stored = await objects(aws)
    assert sorted(stored) == sorted(KEYS[Version.NEW].values())
    assert stored[KEYS[Version.NEW][Kind.USAGE]] == expected_file(Kind.USAGE, Version.NEW)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SlowDown", RetryableError),
        (500, "InternalError", RetryableError),
        (503, "ServiceUnavailable", RetryableError),
        (403, "AccessDenied", FatalError),
        (400, "KMS.DisabledException", FatalError),
        (400, "InvalidArgument", FatalError),
        (400, "ExpiredToken", FatalError),
    ],
)
async def test_a_failed_first_file_fails_the_whole_batch(
    aws: Aws, s3: MakeS3, status: int, code: str, error: type[Exception]
) -> None:
    aws.proxy.answer = failing_puts("events", status, code)

    with pytest.raises(error) as caught:
        await s3().send(batch_of(Version.NEW))

    assert isinstance(caught.value, FatalError | RetryableError)
    assert code in caught.value.message
    assert caught.value.http_status == status
    assert await objects(aws) == {}


@pytest.mark.parametrize("call", ["send", "healthcheck"])
async def test_a_missing_bucket_is_fatal(aws: Aws, s3: MakeS3, call: str) -> None:
    connector = s3(bucket_name="no-such-bucket")

    with pytest.raises(DestinationMissing) as caught:
        await invoke(connector, call)

    assert "NoSuchBucket" in caught.value.message
    assert caught.value.http_status == 404


@pytest.mark.parametrize("call", ["send", "healthcheck"])
async def test_a_bucket_the_role_may_not_write_is_fatal(aws: Aws, s3: MakeS3, call: str) -> None:
    async with aws.account.client("s3") as admin:
        await admin.create_bucket(
            Bucket="someone-elses", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    await aws.moto.enforce_iam()
    connector = s3(bucket_name="someone-elses")
    await s3().healthcheck()  # the same role may use its own bucket

    with pytest.raises(FatalError) as caught:
        await invoke(connector, call)

    assert "AccessDenied" in caught.value.message
    assert caught.value.http_status == 403


@pytest.mark.parametrize("call", ["send", "healthcheck"])
async def test_a_role_that_cannot_be_assumed_is_fatal(aws: Aws, s3: MakeS3, call: str) -> None:
    await aws.moto.enforce_iam()
    connector = s3(organisation=43)

    with pytest.raises(FatalError) as caught:
        await invoke(connector, call)

    assert f"role {aws.account.role_arn} (external id org-43)" in caught.value.message
    assert "cannot be assumed: AccessDenied" in caught.value.message
    assert puts(aws) == []


async def test_the_healthcheck_passes_for_a_writable_bucket(aws: Aws, s3: MakeS3) -> None:
    await aws.moto.enforce_iam()

    await s3().healthcheck()

    assert [seen.method for seen in aws.proxy.requests if seen.action != "AssumeRole"] == ["HEAD"]


async def invoke(connector: S3, call: str) -> None:
    if call == "send":
        await connector.send(batch_of(Version.NEW))
    else:
        await connector.healthcheck()


# --- configuration and keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"compression": "zip"}, "compression"),
        ({"server_side_encryption": "aws:fancy"}, "server_side_encryption"),
        ({"kms_key_id": "alias/x"}, "kms_key_id"),
        ({"flush_size": 0}, "flush_size"),
        ({"role_arn": "arn:aws:iam:1234567890:role/bucket-role"}, "role_arn"),
    ],
)
def test_build_refuses_bad_options(options: dict[str, Any], complaint: str) -> None:
    settings: dict[str, Any] = {
        "region": "eu-west-1",
        "bucket_name": BUCKET,
        "role_arn": "arn:aws:iam::123456789012:role/bucket-role",
        "organisation": 42,
        "stream_id": STREAM_ID,
    }
    with pytest.raises(ValueError, match=complaint):
        S3Config(**(settings | options)).build()


@pytest.mark.parametrize(
    ("row", "key"),
    [
        (b'"1","2026-11-22T10:15:00Z","x"\n', "events/2026/11/22/events_20261122_101500_3-9.csv"),
        (b'"1","2026-11-22T10:15:00.123Z"\n', "events/2026/11/22/events_20261122_101500_3-9.csv"),
        (b'"1","2026-11-22 10:15:00","x"\n', "events/2026/11/22/events_20261122_101500_3-9.csv"),
        (b'"1","","x"\n', "events/1970/01/01/events_19700101_000000_3-9.csv"),
        (b'"1,2","not a time"\n', "events/1970/01/01/events_19700101_000000_3-9.csv"),
    ],
)
def test_the_key_time_is_the_first_records(row: bytes, key: str) -> None:
    assert object_key("", Kind.EVENT, Version.NEW, row, 3, 9) == key
    stamp = key.rpartition("events_")[2].removesuffix("_3-9.csv")
    assert object_key("p/", Kind.USAGE, Version.OLD, row, 3, 9, gzipped=True) == (
        f"p/cdr_{stamp}.csv.gz"
    )
    assert object_key("", Kind.EVENT, Version.MIGRATED, row, 3, 9) == f"events_{stamp}.csv"


def test_a_legacy_name_moves_on_across_midnight() -> None:
    row = b'"1","2026-12-31 23:59:59","x"\n'
    assert object_key("", Kind.EVENT, Version.OLD, row, 3, 9, seconds_on=1) == (
        "events_20270101_000000.csv"
    )
