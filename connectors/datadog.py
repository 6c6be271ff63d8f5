"""Datadog destination: data usage records become metrics, events become logs.

Data usage records (``traffic_type`` 5) go to the series API
(``POST https://api.<site>/api/v2/series``) as exactly four points each, ``endpoint.volume``
(``volume.total``), ``endpoint.volume_tx``, ``endpoint.volume_rx`` and ``endpoint.cost``, of
metric type count, timestamped at the record's ``end_timestamp`` in unix seconds and tagged
with the record's endpoint, organisation, operator, country, traffic type, tariff and currency.
Other usage (SMS, whose ``volume`` is a count, not megabytes) is acknowledged without being
sent, as the platform sends data volume only: a dashboard summing ``endpoint.volume`` adds
megabytes to megabytes. Events go to the logs intake
(``POST https://http-intake.logs.<site>/api/v2/logs``): the event's own fields are the log's
attributes, and ``ddsource``, ``service``, ``ddtags``, ``status`` (from the severity) and
``message`` (the description) are set on top of them.

Guarantees:

- Every request is gzip-compressed (``Content-Encoding: gzip``) and carries the key in
  ``DD-API-KEY`` only; the key never appears in a message, a ``repr`` or a redirect to another
  host (only same-origin 307/308 redirects are followed).
- Datadog's documented limits are honoured by splitting, never by failing: series requests stay
  under 5 MB uncompressed and 500 kB compressed, log requests hold at most 1000 entries and
  stay under 5 MB uncompressed. A 413 answer splits the request in halves and sends both. A
  record that cannot fit any request on its own, or cannot be read as its kind, is returned as
  ``rejected`` with the reason; it is never retried.
- A record counts as delivered only when the request carrying it was answered 2xx (202 is
  Datadog's usual answer). When a retryable failure stops a send after some requests went,
  ``send`` returns the positions still undelivered as ``retry``; when nothing went, it raises.
- 401/403 raise ``FatalError`` saying "invalid API key"; 400 and other 4xx raise ``FatalError``;
  408, 429 and 5xx raise ``RetryableError`` with ``Retry-After`` honoured.

Datadog accepts metric points only up to an hour in the past and log dates up to 18 hours in
the past (its documentation); older history replayed through this destination is sent as is.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import orjson

from connectors.base import Batch, FatalError, Rendering, RetryableError, SendResult
from connectors.http import (
    Client,
    Sessions,
    check_destination,
    error_for_exception,
    error_for_status,
    post_within_origin,
)
from schemas import MalformedRecord, Version, loads
from schemas.render import to_json

__all__ = ["SITES", "Datadog", "DatadogConfig", "tag"]

SITES: Final[Mapping[str, str]] = {
    "US": "datadoghq.com",
    "US3": "us3.datadoghq.com",
    "US5": "us5.datadoghq.com",
    "EU": "datadoghq.eu",
    "US1FED": "ddog-gov.com",
    "AP1": "ap1.datadoghq.com",
}
"""The Datadog site of each region the data stream API accepts (API.md §3)."""

SERIES_PATH: Final = "/api/v2/series"
LOGS_PATH: Final = "/api/v2/logs"
VALIDATE_PATH: Final = "/api/v1/validate"

USAGE_METRICS: Final = (
    "endpoint.volume",
    "endpoint.volume_tx",
    "endpoint.volume_rx",
    "endpoint.cost",
)
DATA_TRAFFIC_TYPE: Final = 5
METRIC_TYPE_COUNT: Final = 1  # the series v2 enum: 0 unspecified, 1 count, 2 rate, 3 gauge

MAX_LOG_ENTRIES: Final = 1000
MAX_LOG_BYTES: Final = 5_000_000  # "5MB uncompressed" per request, read as decimal megabytes
MAX_SERIES_BYTES: Final = 5_000_000  # documented: decompressed size below 5242880 bytes
MAX_SERIES_COMPRESSED: Final = 512_000  # documented: payloads of at most 500 kilobytes

_SEVERITY_STATUS: Final = {
    "INFO": "info",
    "WARN": "warn",
    "WARNING": "warn",
    "CRITICAL": "critical",
}
_SEVERITY_ID_STATUS: Final = {0: "info", 1: "warn", 2: "critical"}
_THREAD_GZIP_BYTES: Final = 256 * 1024  # compress larger bodies off the event loop


# --- tags ------------------------------------------------------------------------------------

_TAG_INVALID = re.compile(r"[^\w\-:./]+")  # \w: Unicode letters and digits, and "_"
_UNDERSCORES = re.compile(r"__+")
MAX_TAG_CHARS: Final = 200


def tag(key: str, value: object) -> str | None:
    """``key:value`` as a tag Datadog keeps unchanged, or ``None`` when nothing of the value is
    left (``None``, empty, or only characters Datadog drops).

    The result is lower case, at most 200 characters, starts with a letter and holds only
    letters, digits, ``_``, ``-``, ``:``, ``.`` and ``/``: any other run of characters (spaces,
    commas, quotes, ...) becomes one ``_``, runs of ``_`` are collapsed and a trailing ``_`` or
    ``:`` is dropped, as Datadog itself would do (its "Getting Started with Tags" rules).
    """
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    name = _clean(key).strip("_")
    if not name[:1].isalpha():
        raise ValueError(f"a tag key must start with a letter: {key!r}")
    cleaned = f"{name}:{_clean(text)}"[:MAX_TAG_CHARS].rstrip("_:")
    return cleaned if len(cleaned) > len(name) + 1 else None


def _clean(text: str) -> str:
    return _UNDERSCORES.sub("_", _TAG_INVALID.sub("_", text.lower()))


def _tags(*pairs: tuple[str, object]) -> list[str]:
    return [t for k, v in pairs if (t := tag(k, v)) is not None]


# --- config ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatadogConfig:
    """A Datadog destination: ``region`` picks the site; ``base_url`` (``STREAMER_DATADOG_URL``)
    replaces both API hosts with one base, for proxies and tests."""

    api_key: str = field(repr=False)
    region: str = "US"
    base_url: str | None = None
    allow_private: bool = False
    timeout_secs: float = 30.0
    service: str = "streamer"
    sessions: Sessions | None = field(default=None, repr=False, compare=False)
    """Client sessions shared with other connectors (``None``: one of its own)."""

    @property
    def series_url(self) -> str:
        if self.base_url is not None:
            return self.base_url.rstrip("/") + SERIES_PATH
        return f"https://api.{self._site()}{SERIES_PATH}"

    @property
    def logs_url(self) -> str:
        if self.base_url is not None:
            return self.base_url.rstrip("/") + LOGS_PATH
        return f"https://http-intake.logs.{self._site()}{LOGS_PATH}"

    @property
    def validate_url(self) -> str:
        base = (
            self.base_url.rstrip("/")
            if self.base_url is not None
            else f"https://api.{self._site()}"
        )
        return base + VALIDATE_PATH

    def build(self) -> Datadog:
        """Check the config and the destination and return the connector (``ValueError``,
        ``PrivateDestinationError``)."""
        if not self.api_key or not self.api_key.isascii() or not self.api_key.isprintable():
            raise ValueError("api_key must be a non-empty printable ASCII string")
        if any(c.isspace() for c in self.api_key):
            raise ValueError("api_key must not contain whitespace")
        for url in (self.series_url, self.logs_url):
            check_destination(url, self.allow_private)
        return Datadog(self)

    def _site(self) -> str:
        try:
            return SITES[self.region.upper()]
        except KeyError:
            known = ", ".join(SITES)
            raise ValueError(f"unknown Datadog region {self.region!r} (one of {known})") from None


# --- the connector ---------------------------------------------------------------------------

Entry = tuple[int, bytes]
"""One record's part of a request body: its position in the batch and its JSON bytes."""


@dataclass(frozen=True, slots=True)
class _Api:
    """One Datadog intake: its URL, how entries are framed, and its size limits."""

    name: str
    url: str
    prefix: bytes
    suffix: bytes
    max_entries: int | None
    max_bytes: int  # uncompressed body, exclusive
    max_compressed: int | None  # compressed body, inclusive

    def frame(self, chunk: Sequence[Entry]) -> bytes:
        return self.prefix + b",".join(body for _, body in chunk) + self.suffix

    def fits(self, entry: Entry) -> bool:
        return len(self.prefix) + len(entry[1]) + len(self.suffix) < self.max_bytes


@dataclass(slots=True)
class _Progress:
    """What the requests of one ``send`` achieved so far."""

    delivered: set[int] = field(default_factory=set)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    status: int | None = None


class Datadog:
    """Sends usage records as metrics and events as logs; see the module docstring."""

    def __init__(self, config: DatadogConfig) -> None:
        self.config = config
        self.rendering = Rendering(Version.NEW)
        self.max_batch = MAX_LOG_ENTRIES
        self.linger_secs: float | None = None
        self.stable_batches = False
        self._client = Client(config.allow_private, config.timeout_secs, config.sessions)
        self._series = _Api(
            "series",
            config.series_url,
            b'{"series":[',
            b"]}",
            None,
            MAX_SERIES_BYTES,
            MAX_SERIES_COMPRESSED,
        )
        self._logs = _Api("logs", config.logs_url, b"[", b"]", MAX_LOG_ENTRIES, MAX_LOG_BYTES, None)

    async def send(self, batch: Batch) -> SendResult:
        """Usage as series, then events as logs, in requests within Datadog's limits."""
        progress = _Progress()
        series, logs = self._entries(batch, progress)
        try:
            for api, entries in ((self._series, series), (self._logs, logs)):
                for chunk in self._chunks(api, entries, progress):
                    await self._post_chunk(api, chunk, progress)
        except RetryableError as error:
            if not progress.delivered:
                raise
            done = progress.delivered | {p for p, _ in progress.rejected}
            pending = [p for p in range(len(batch.payloads)) if p not in done]
            return SendResult(error.http_status, retry=pending, rejected=progress.rejected)
        return SendResult(progress.status, rejected=progress.rejected)

    def _entries(self, batch: Batch, progress: _Progress) -> tuple[list[Entry], list[Entry]]:
        """The batch's series entries (data usage) and log entries (events); a record that
        cannot be read is refused in ``progress``, other usage is left out."""
        series: list[Entry] = []
        logs: list[Entry] = []
        for position, (payload, kind) in enumerate(zip(batch.payloads, batch.kinds, strict=True)):
            try:
                if kind == "usage":
                    entry = self._usage_series(payload)
                    if entry is not None:
                        series.append((position, entry))
                elif kind == "event":
                    logs.append((position, self._event_log(payload)))
                else:
                    progress.rejected.append((position, f"unknown record kind {kind!r}"))
            except KeyError as exc:
                progress.rejected.append((position, f"not a readable {kind} record: no {exc}"))
            except (MalformedRecord, LookupError, TypeError, ValueError) as exc:
                progress.rejected.append((position, f"not a readable {kind} record: {exc}"))
        return series, logs

    async def healthcheck(self) -> None:
        """Ask Datadog whether the API key is valid (``GET /api/v1/validate``, no side effect)."""
        headers = {"DD-API-KEY": self.config.api_key, "Accept": "application/json"}
        try:
            async with self._client().get(
                self.config.validate_url, headers=headers, allow_redirects=False
            ) as response:
                await self._check(response.status, response.headers, await response.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise error_for_exception(exc) from None

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- records to request entries -----------------------------------------------------

    def _usage_series(self, payload: bytes) -> bytes | None:
        """The four series of one data usage record, as JSON objects separated by commas;
        ``None`` for other traffic."""
        record = _object(payload)
        if record["traffic_type"]["id"] != DATA_TRAFFIC_TYPE:
            return None
        volume = record["volume"]
        values = (volume["total"], volume["tx"], volume["rx"], record["cost"])
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"a metric value must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"a metric value must be finite, not {value!r}")
        timestamp = _unix_seconds(record["end_timestamp"])
        tags = self._usage_tags(record)
        return b",".join(
            orjson.dumps(
                {
                    "metric": metric,
                    "type": METRIC_TYPE_COUNT,
                    "points": [{"timestamp": timestamp, "value": value}],
                    "tags": tags,
                }
            )
            for metric, value in zip(USAGE_METRICS, values, strict=True)
        )

    def _usage_tags(self, record: Mapping[str, Any]) -> list[str]:
        endpoint = _part(record, "endpoint")
        organisation = _part(record, "organisation")
        operator = _part(record, "operator")
        country = _part(operator, "country")
        traffic = _part(record, "traffic_type")
        tariff = _part(record, "tariff")
        ratezone = _part(tariff, "ratezone")
        return _tags(
            ("service", self.config.service),
            ("endpoint_id", endpoint.get("id")),
            ("endpoint_name", endpoint.get("name")),
            ("organisation_id", organisation.get("id")),
            ("organisation_name", organisation.get("name")),
            ("operator_id", operator.get("id")),
            ("operator_name", operator.get("name")),
            ("country_id", country.get("id")),
            ("country_name", country.get("name")),
            ("traffic_type_id", traffic.get("id")),
            ("traffic_type", traffic.get("description", traffic.get("name"))),
            ("tariff_id", tariff.get("id")),
            ("tariff_name", tariff.get("name")),
            ("ratezone_id", ratezone.get("id")),
            ("ratezone_name", ratezone.get("name")),
            ("currency", _part(record, "currency").get("code")),
        )

    def _event_log(self, payload: bytes) -> bytes:
        """One event as a log entry: the event's fields, then the intake's reserved ones."""
        event = _object(payload)
        severity = _part(event, "event_severity")
        event_type = _part(event, "event_type")
        source = _part(event, "event_source")
        organisation = _part(event, "organisation")
        endpoint = _part(event, "endpoint")
        tags = _tags(
            ("event_type_id", event_type.get("id")),
            ("event_type", event_type.get("description")),
            ("event_severity", severity.get("description")),
            ("event_source", source.get("description", source.get("name"))),
            ("organisation_id", organisation.get("id")),
            ("organisation_name", organisation.get("name")),
            ("endpoint_id", endpoint.get("id")),
            ("endpoint_name", endpoint.get("name")),
            ("alert", event.get("alert")),
        )
        description = event.get("description")
        log = {
            **event,
            "ddsource": "streamer",
            "service": self.config.service,
            "ddtags": ",".join(tags),
            "status": _status(severity),
            "message": description if isinstance(description, str) else "",
        }
        return to_json(log)

    # --- requests -----------------------------------------------------------------------

    def _chunks(
        self, api: _Api, entries: Sequence[Entry], progress: _Progress
    ) -> Iterator[list[Entry]]:
        """Pack entries in order into request-sized chunks; reject those too big for any."""
        chunk: list[Entry] = []
        size = len(api.prefix) + len(api.suffix)
        for entry in entries:
            if not api.fits(entry):
                progress.rejected.append((entry[0], _too_large(api)))
                continue
            grow = len(entry[1]) + (1 if chunk else 0)
            full = api.max_entries is not None and len(chunk) >= api.max_entries
            if chunk and (full or size + grow >= api.max_bytes):
                yield chunk
                chunk, size, grow = [], len(api.prefix) + len(api.suffix), len(entry[1])
            chunk.append(entry)
            size += grow
        if chunk:
            yield chunk

    async def _post_chunk(self, api: _Api, chunk: list[Entry], progress: _Progress) -> None:
        """Send one chunk, in halves while it is too large compressed or Datadog answers 413."""
        body = await _gzip(api.frame(chunk))
        too_large = api.max_compressed is not None and len(body) > api.max_compressed
        if not too_large:
            status = await self._post(api.url, body)
            if status != 413:
                progress.status = status
                progress.delivered.update(position for position, _ in chunk)
                return
        if len(chunk) == 1:
            progress.rejected.append((chunk[0][0], _too_large(api)))
            return
        half = len(chunk) // 2
        await self._post_chunk(api, chunk[:half], progress)
        await self._post_chunk(api, chunk[half:], progress)

    async def _post(self, url: str, body: bytes) -> int:
        """POST a gzipped JSON body; the 2xx or 413 status, or raise the error it means."""
        headers = {
            "DD-API-KEY": self.config.api_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
        }
        answer = await post_within_origin(self._client(), url, body, headers)
        if answer.status != 413:
            await self._check(answer.status, answer.headers, answer.body[:300])
        status: int = answer.status
        return status

    async def _check(self, status: int, headers: Any, detail: bytes) -> None:
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise FatalError(f"invalid API key: Datadog answered {status} to DD-API-KEY", status)
        text = detail.decode(errors="replace").strip().replace(self.config.api_key, "****")
        raise error_for_status(status, headers, text)


# --- helpers ---------------------------------------------------------------------------------


def _object(payload: bytes) -> dict[str, Any]:
    value = loads(payload)
    if not isinstance(value, dict):
        raise TypeError("the payload is not a JSON object")
    return value


def _part(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object of ``record``, or an empty one when it is null or missing."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _unix_seconds(timestamp: object) -> int:
    if not isinstance(timestamp, str):
        raise TypeError(f"a timestamp must be a string, not {timestamp!r}")
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def _status(severity: Mapping[str, Any]) -> str:
    """The log status of an event severity: INFO → info, WARN → warn, CRITICAL → critical."""
    description = severity.get("description")
    if isinstance(description, str) and description.upper() in _SEVERITY_STATUS:
        return _SEVERITY_STATUS[description.upper()]
    severity_id = severity.get("id")
    return _SEVERITY_ID_STATUS.get(severity_id, "info") if isinstance(severity_id, int) else "info"


def _too_large(api: _Api) -> str:
    return f"larger on its own than Datadog's {api.name} intake accepts in one request"


async def _gzip(body: bytes) -> bytes:
    if len(body) <= _THREAD_GZIP_BYTES:
        return gzip.compress(body, compresslevel=6, mtime=0)
    return await asyncio.to_thread(gzip.compress, body, 6, mtime=0)
