"""AWS Kinesis (``AwsKinesis``) destination: each record is one Kinesis record, JSON in the
stream's version, written with ``PutRecords`` as the stream's role (``connectors.aws``).

Guarantees:

- Limits are honoured by splitting, in batch order: at most 500 records and 5 MiB per call,
  counting data and partition keys as Kinesis does. A record that alone exceeds 1 MiB (data
  and partition key) can never be written: it is returned in ``rejected`` with the reason and
  the rest of the batch is delivered.
- The partition key is the record's ``endpoint.id``, else its ``sim.id``, else its ``id``, so
  one device's records always land on the same shard. Kinesis orders a shard by sequence
  number; ``PutRecords`` does not promise request order within one call, and a record retried
  after a throughput failure comes after its successors, so order per device is kept only as
  far as Kinesis itself keeps it.
- After every call ``FailedRecordCount`` is read: entries failed with
  ``ProvisionedThroughputExceededException`` or ``InternalFailure`` are returned in ``retry``
  (only those: the accepted ones are never sent again). Once a call has failures, or fails as a
  whole after earlier calls went through, the remaining calls are not made and their records
  are returned in ``retry`` too — so a throttled shard is not hammered, and nothing delivered is
  re-sent. Any other per-record error code is permanent → ``FatalError``.
- ``healthcheck`` is ``DescribeStreamSummary``: a missing stream or a role that cannot be
  assumed → ``FatalError`` with the AWS error code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.aws import AWS_ERRORS, AssumedRole, RoleClients, check_role_arn, error_for
from connectors.base import Batch, FatalError, Rendering, RetryableError, SendResult
from schemas import MalformedRecord, Version, loads

__all__ = [
    "MAX_CALL_BYTES",
    "MAX_CALL_RECORDS",
    "MAX_RECORD_BYTES",
    "Kinesis",
    "KinesisConfig",
    "partition_key",
]

MAX_CALL_RECORDS = 500
MAX_CALL_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
RETRYABLE_RECORD_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class KinesisConfig:
    """An ``AwsKinesis`` destination (API.md §3) of stream ``stream_id`` in ``organisation``."""

    region: str
    stream_name: str
    role_arn: str
    organisation: int
    stream_id: int | str
    version: Version = Version.NEW
    sdk_max_attempts: int = 3
    """botocore's attempts per call (standard retry mode) before the engine's policy takes over."""

    def build(self) -> Kinesis:
        """Check the role ARN's shape (``ValueError``) and return the connector."""
        check_role_arn(self.role_arn)
        return Kinesis(self)


@dataclass(frozen=True, slots=True)
class _Entry:
    position: int
    data: bytes
    key: str
    size: int


class Kinesis:
    def __init__(self, config: KinesisConfig) -> None:
        self.config = config
        self.rendering = Rendering(config.version)
        self.max_batch = MAX_CALL_RECORDS
        self.linger_secs: float | None = None
        self.stable_batches = False
        self._clients = RoleClients(
            AssumedRole(config.region, config.role_arn, config.organisation, config.stream_id),
            max_attempts=config.sdk_max_attempts,
        )

    async def send(self, batch: Batch) -> SendResult:
        entries: list[_Entry] = []
        rejected: list[tuple[int, str]] = []
        for position, payload in enumerate(batch.payloads):
            key = partition_key(payload, batch.offsets[position])
            size = len(payload) + len(key.encode())
            if size > MAX_RECORD_BYTES:
                rejected.append(
                    (
                        position,
                        f"the record is {size} bytes with its partition key; Kinesis takes "
                        f"at most {MAX_RECORD_BYTES} bytes per record",
                    )
                )
            else:
                entries.append(_Entry(position, payload, key, size))
        calls = list(_split(entries))
        retry: list[int] = []
        http_status: int | None = None
        for index, call in enumerate(calls):
            try:
                http_status, failed = await self._put(call, batch)
            except RetryableError:
                if index == 0:
                    raise
                failed = [entry.position for entry in call]
            if failed:
                retry = failed + [entry.position for later in calls[index + 1 :] for entry in later]
                break
        return SendResult(http_status=http_status, retry=tuple(retry), rejected=tuple(rejected))

    async def healthcheck(self) -> None:
        action = "Kinesis DescribeStreamSummary"
        try:
            kinesis = await self._clients.client("kinesis")
            response = await kinesis.describe_stream_summary(StreamName=self.config.stream_name)
        except AWS_ERRORS as exc:
            raise error_for(exc, action, self._clients.role) from None
        status = response["StreamDescriptionSummary"]["StreamStatus"]
        if status == "CREATING":
            raise RetryableError(f"{action}: stream {self.config.stream_name} is being created")
        if status == "DELETING":
            raise FatalError(f"{action}: stream {self.config.stream_name} is being deleted")

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def _put(self, call: Sequence[_Entry], batch: Batch) -> tuple[int | None, list[int]]:
        """One ``PutRecords``: its HTTP status and the positions to try again."""
        records = [{"Data": entry.data, "PartitionKey": entry.key} for entry in call]
        try:
            kinesis = await self._clients.client("kinesis")
            response: dict[str, Any] = await kinesis.put_records(
                StreamName=self.config.stream_name, Records=records
            )
        except AWS_ERRORS as exc:
            raise error_for(exc, "Kinesis PutRecords", self._clients.role) from None
        http_status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if not response.get("FailedRecordCount"):
            return http_status, []
        failed: list[int] = []
        for entry, result in zip(call, response["Records"], strict=True):
            code = result.get("ErrorCode")
            if code is None:
                continue
            if code not in RETRYABLE_RECORD_CODES:
                raise FatalError(
                    f"Kinesis PutRecords refused the record at log offset "
                    f"{batch.offsets[entry.position]}: {code}: {result.get('ErrorMessage', '')}"
                )
            failed.append(entry.position)
        return http_status, failed


def partition_key(payload: bytes, offset: int) -> str:
    """The record's ``endpoint.id``, else ``sim.id``, else ``id``; its log ``offset`` when the
    payload holds none of them (or is not a JSON object)."""
    try:
        record = loads(payload)
    except MalformedRecord:
        return str(offset)
    if isinstance(record, dict):
        for entity in ("endpoint", "sim"):
            value = record.get(entity)
            if isinstance(value, dict) and value.get("id") is not None:
                return str(value["id"])
        if record.get("id") is not None:
            return str(record["id"])
    return str(offset)


def _split(entries: Sequence[_Entry]) -> Iterator[list[_Entry]]:
    """Consecutive runs of at most ``MAX_CALL_RECORDS`` entries and ``MAX_CALL_BYTES``."""
    call: list[_Entry] = []
    size = 0
    for entry in entries:
        if call and (len(call) == MAX_CALL_RECORDS or size + entry.size > MAX_CALL_BYTES):
            yield call
            call, size = [], 0
        call.append(entry)
        size += entry.size
    if call:
        yield call
