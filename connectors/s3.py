"""AWS S3 (``S3``) destination: CSV files (FORMATS.md §4), written with ``PutObject`` as the
stream's role (``connectors.aws``).

Guarantees:

- One object per record kind per batch, holding the exact header row of that kind and version
  (``schemas.csv_header``) and then the batch's rows of that kind, in log order. A batch is at
  most ``flush_size`` records and waits at most ``rotate_interval_ms`` to fill.
- The object key is a function of the records it holds, never of the clock, so sending the
  same records again (a retry, or a re-send after a crash) overwrites the same object instead
  of adding a second copy. With gzip the bytes are identical too (no time in the gzip header).
- ``new`` keys: ``{prefix}events/2026/11/22/events_20261122_101500_<first>-<last>.csv``
  (``usage/…/usage_…`` for usage): the time of the first record and the log offsets of the
  first and last. A re-sent batch that ends at another offset than the first try (more records
  arrived while the service was down) is other records, and gets another key: exact re-sends
  after a crash need the engine to cut the same batch again.
- ``old``/``migrated`` keys are the platform's documented flat names,
  ``{prefix}events_20261122_101500.csv`` and ``{prefix}cdr_…``: the time of the first record,
  moved on a second at a time while that name is another batch's. Each object carries its
  batch (stream and first log offset) in ``x-amz-meta-streamer-batch`` and is written with
  ``If-None-Match: *``; when the name is taken, ``HeadObject`` tells whether it is this batch's
  own object (a re-send: it is overwritten) or another's (the next second is tried). The names
  a batch walks through are the same after a crash, so a re-send finds its own file again.
  This needs ``s3:GetObject`` besides ``s3:PutObject`` once two batches start in one second.
- ``.gz`` is appended when compressed. ``key_prefix`` is used verbatim (end it with ``/`` for a
  folder).
- Every ``PutObject`` carries ``Content-MD5`` (S3 refuses a body that does not match it),
  ``Content-Type: text/csv``, ``Content-Encoding: gzip`` when compressed, and server-side
  encryption: ``AES256`` unless configured otherwise (``aws:kms`` with ``kms_key_id``, or
  ``None`` for the bucket's default).
- If the second file of a batch fails after the first was written, only the second kind's
  records are returned in ``retry`` (their object key does not change).
- ``healthcheck`` is ``HeadBucket``: a missing or forbidden bucket, or a role that cannot be
  assumed → ``FatalError`` with the AWS error code.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import gzip
import hashlib
import io
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from connectors.aws import AWS_ERRORS, AssumedRole, RoleClients, check_role_arn, error_for
from connectors.base import Batch, FatalError, Form, Rendering, RetryableError, SendResult
from schemas import Kind, Version, csv_header

__all__ = ["S3", "S3Config", "object_key"]

_KINDS = {kind.value: kind for kind in Kind}
_SSE = (None, "AES256", "aws:kms", "aws:kms:dsse")
_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})")
_NEW_NAMES = {Kind.EVENT: "events", Kind.USAGE: "usage"}
_LEGACY_NAMES = {Kind.EVENT: "events", Kind.USAGE: "cdr"}
_HEAD_BUCKET_CODES = {"404": "NoSuchBucket", "403": "AccessDenied", "400": "BadRequest"}
_HEAD_OBJECT_CODES = {"404": "NoSuchKey", "403": "AccessDenied", "400": "BadRequest"}
_BATCH_META = "streamer-batch"
_MAX_SECONDS_ON = 3600
"""How far a legacy name may move past its first record's second before the send fails."""
_KNOWN_NAMES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Config:
    """An ``S3`` destination (API.md §3) of stream ``stream_id`` in ``organisation``."""

    region: str
    bucket_name: str
    role_arn: str
    organisation: int
    stream_id: int | str
    version: Version = Version.NEW
    flush_size: int = 10000
    rotate_interval_ms: int = 10000
    key_prefix: str = ""
    compression: Literal["none", "gzip"] = "none"
    server_side_encryption: str | None = "AES256"
    kms_key_id: str | None = None
    sdk_max_attempts: int = 3
    """botocore's attempts per call (standard retry mode) before the engine's policy takes over."""

    def build(self) -> S3:
        """Check the options (``ValueError`` naming the bad one) and return the connector."""
        check_role_arn(self.role_arn)
        if self.compression not in ("none", "gzip"):
            raise ValueError(f"compression must be 'none' or 'gzip', not {self.compression!r}")
        if self.flush_size < 1 or self.rotate_interval_ms < 1:
            raise ValueError("flush_size and rotate_interval_ms must be positive")
        if self.server_side_encryption not in _SSE:
            sse = self.server_side_encryption
            raise ValueError(f"server_side_encryption must be one of {_SSE}, not {sse!r}")
        if self.kms_key_id and not (self.server_side_encryption or "").startswith("aws:kms"):
            raise ValueError("kms_key_id needs server_side_encryption 'aws:kms' or 'aws:kms:dsse'")
        return S3(self)


class S3:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.rendering = Rendering(config.version, form=Form.CSV)
        self.max_batch = config.flush_size
        self.linger_secs: float | None = config.rotate_interval_ms / 1000
        self.stable_batches = True
        self._clients = RoleClients(
            AssumedRole(config.region, config.role_arn, config.organisation, config.stream_id),
            max_attempts=config.sdk_max_attempts,
        )
        self._extra: dict[str, str] = {"ContentType": "text/csv"}
        if config.compression == "gzip":
            self._extra["ContentEncoding"] = "gzip"
        if config.server_side_encryption:
            self._extra["ServerSideEncryption"] = config.server_side_encryption
        if config.kms_key_id:
            self._extra["SSEKMSKeyId"] = config.kms_key_id
        self._owners: OrderedDict[str, str] = OrderedDict()
        """Recent legacy names and the batch each holds, to skip asking S3 again."""

    async def send(self, batch: Batch) -> SendResult:
        by_kind: dict[Kind, list[int]] = {}
        rejected: list[tuple[int, str]] = []
        for position, name in enumerate(batch.kinds):
            kind = _KINDS.get(name)
            if kind is not None:
                by_kind.setdefault(kind, []).append(position)
            else:
                rejected.append((position, f"unknown record kind {name!r}"))
        groups = list(by_kind.items())
        for index, (kind, positions) in enumerate(groups):
            try:
                await self._put(kind, positions, batch)
            except RetryableError:
                if index == 0:
                    raise
                retry = [p for _, later in groups[index:] for p in later]
                return SendResult(
                    http_status=200, retry=tuple(sorted(retry)), rejected=tuple(rejected)
                )
        return SendResult(http_status=200 if groups else None, rejected=tuple(rejected))

    async def healthcheck(self) -> None:
        try:
            s3 = await self._clients.client("s3")
            await s3.head_bucket(Bucket=self.config.bucket_name)
        except AWS_ERRORS as exc:
            raise error_for(
                exc,
                f"S3 HeadBucket {self.config.bucket_name}",
                self._clients.role,
                _HEAD_BUCKET_CODES,
            ) from None

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def _put(self, kind: Kind, positions: Sequence[int], batch: Batch) -> None:
        config = self.config
        rows = [batch.payloads[p] for p in positions]
        first, last = batch.offsets[positions[0]], batch.offsets[positions[-1]]
        gzipped = config.compression == "gzip"
        # a file of flush_size rows is megabytes: compress and digest it off the event loop
        body, md5 = await asyncio.to_thread(self._file, kind, rows)
        if config.version is Version.NEW:
            key = object_key(
                config.key_prefix, kind, config.version, rows[0], first, last, gzipped=gzipped
            )
            await self._put_object(key, body, md5)
            return
        owner = f"{config.stream_id}/{first}"
        for seconds_on in range(_MAX_SECONDS_ON):
            key = object_key(
                config.key_prefix, kind, config.version, rows[0], first, last,
                gzipped=gzipped, seconds_on=seconds_on,
            )  # fmt: skip
            holder = self._owners.get(key)
            if holder is None:
                if await self._put_if_absent(key, body, md5, owner):
                    self._remember(key, owner)
                    return
                holder = await self._holder(key)
                self._remember(key, holder)
            if holder == owner:  # this batch's own file: a re-send overwrites it
                await self._put_object(key, body, md5, owner)
                return
        raise FatalError(f"S3: every name up to {key} is another batch's file")

    async def _put_object(
        self, key: str, body: bytes, md5: str, owner: str | None = None, **condition: str
    ) -> None:
        config = self.config
        extra: dict[str, Any] = dict(self._extra, **condition)
        if owner is not None:
            extra["Metadata"] = {_BATCH_META: owner}
        try:
            s3 = await self._clients.client("s3")
            await s3.put_object(
                Bucket=config.bucket_name, Key=key, Body=body, ContentMD5=md5, **extra
            )
        except AWS_ERRORS as exc:
            raise error_for(exc, f"S3 PutObject {key}", self._clients.role) from None

    async def _put_if_absent(self, key: str, body: bytes, md5: str, owner: str) -> bool:
        """Write ``key`` unless it exists (``If-None-Match: *``); whether it was written."""
        try:
            await self._put_object(key, body, md5, owner, IfNoneMatch="*")
        except FatalError as error:
            if error.http_status == 412:
                return False
            raise
        return True

    async def _holder(self, key: str) -> str:
        """The batch the existing object ``key`` holds ("" for a file not written here)."""
        try:
            s3 = await self._clients.client("s3")
            head = await s3.head_object(Bucket=self.config.bucket_name, Key=key)
        except AWS_ERRORS as exc:
            error = error_for(exc, f"S3 HeadObject {key}", self._clients.role, _HEAD_OBJECT_CODES)
            if error.http_status == 404:
                return ""  # deleted since: the next try writes it
            raise error from None
        return str(head.get("Metadata", {}).get(_BATCH_META, ""))

    def _remember(self, key: str, owner: str) -> None:
        self._owners[key] = owner
        self._owners.move_to_end(key)
        if len(self._owners) > _KNOWN_NAMES:
            self._owners.popitem(last=False)

    def _file(self, kind: Kind, rows: Sequence[bytes]) -> tuple[bytes, str]:
        """The object's bytes (header, rows, compressed if asked) and their ``Content-MD5``."""
        body = csv_header(kind, self.config.version).encode() + b"".join(rows)
        if self.config.compression == "gzip":
            body = gzip.compress(body, mtime=0)
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        return body, base64.b64encode(digest).decode()


def object_key(
    prefix: str,
    kind: Kind,
    version: Version,
    first_row: bytes,
    first_offset: int,
    last_offset: int,
    *,
    gzipped: bool = False,
    seconds_on: int = 0,
) -> str:
    """The object key of a file of ``kind`` rows whose first row is ``first_row``.

    The time is that row's second column (``timestamp`` of an event, ``start_timestamp`` of a
    usage record, in every version), so it is the records', not the clock's; a row without a
    readable time files under 1970-01-01 00:00:00 rather than under a changing name. Legacy
    names (``cdr_YYYYMMDD_HHmmss.csv``) hold no offsets; ``seconds_on`` moves their time on.
    """
    stamp = _first_time(first_row)
    extension = ".csv.gz" if gzipped else ".csv"
    if version is not Version.NEW:
        moved = datetime.strptime(stamp, "%Y%m%d%H%M%S") + timedelta(seconds=seconds_on)
        return f"{prefix}{_LEGACY_NAMES[kind]}_{moved:%Y%m%d_%H%M%S}{extension}"
    date, clock = stamp[:8], stamp[8:]
    name = _NEW_NAMES[kind]
    folder = f"{date[:4]}/{date[4:6]}/{date[6:]}"
    return f"{prefix}{name}/{folder}/{name}_{date}_{clock}_{first_offset}-{last_offset}{extension}"


def _first_time(row: bytes) -> str:
    """``YYYYMMDDhhmmss`` from the row's second column, ``19700101000000`` if there is none."""
    try:
        fields = next(csv.reader(io.StringIO(row.decode(errors="replace"))), [])
    except csv.Error:
        fields = []
    found = _STAMP.match(fields[1]) if len(fields) > 1 else None
    return "".join(found.groups()) if found else "19700101000000"
