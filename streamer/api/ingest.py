"""``POST /api/v1/ingest/events|usage``: records in, answered 202 only once they are stored.

All or nothing: one unreadable record (or one of the other kind) refuses the whole request
with every problem listed, and nothing is stored. 503 with ``Retry-After`` (nothing stored)
when the log is full, the service is draining, or no ingest worker could read the body (it
died twice in a row, hung past ``STREAMER_INGEST_TIMEOUT_SECS``, or none can start); 503 too
when the log cannot be reached (JetStream: NATS away), where part of the request may be stored
and the client's retry of it is not stored twice (``streamer/log/jetstream.py``). Records
are normalised once, here; the log holds their canonical bytes.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from schemas import Kind, Version
from streamer.api.auth import require
from streamer.api.budget import Reservation
from streamer.api.errors import ApiError, Handler
from streamer.api.limits import read_body
from streamer.api.services import SERVICES
from streamer.log.base import LogError, LogFullError
from streamer.workers import WorkersUnavailable

__all__ = ["count_rejections", "routes"]

_CONTENT_TYPES = {"application/json", "application/x-ndjson", "application/ndjson"}
_INGEST_PREFIX = "/api/v1/ingest/"
_INFLATE_STEP_BYTES = 1 << 20


async def ingest_events(request: web.Request) -> web.Response:
    return await _ingest(request, Kind.EVENT)


async def ingest_usage(request: web.Request) -> web.Response:
    return await _ingest(request, Kind.USAGE)


async def _ingest(request: web.Request, kind: Kind) -> web.Response:
    services = request.app[SERVICES]
    principal = require(request, "ingest", "admin")
    if services.draining:
        raise ApiError(503, "the service is shutting down", headers={"Retry-After": "5"})
    if request.content_type not in _CONTENT_TYPES:
        raise ApiError(
            415, "send application/json or application/x-ndjson, optionally gzip-encoded"
        )
    version = _version(request.query.get("format", "auto"))
    limit = services.settings.max_body_bytes
    length = request.content_length
    with services.ingest_budget.reserve(limit if length is None else min(length, limit)) as held:
        body = await _body(request, limit, held)
        try:
            read = await services.readers.read(body, kind, version, principal.organisation)
        except WorkersUnavailable as exc:
            raise ApiError(
                503, f"{exc}; nothing was stored, send it again", headers={"Retry-After": "2"}
            ) from None
        del body  # the entries stand for it now: free it before the append
        if read.errors:
            raise ApiError(
                400,
                f"{read.error_count} record(s) cannot be read; nothing was stored",
                "invalid_records",
                read.errors,
            )
        if read.foreign:
            raise ApiError(
                403,
                f"records {read.foreign[:20]} belong to another organisation than the token's;"
                " nothing was stored",
            )
        entries = read.entries()
        try:
            await services.log.append(entries)
        except LogFullError as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "30"}) from None
        except LogError as exc:  # the log is out of reach (NATS away): some may be stored
            raise ApiError(
                503,
                f"{exc}; nothing is guaranteed stored, send it again",
                headers={"Retry-After": "2"},
            ) from None
    services.fanout.notify(entries)
    services.metrics.ingested.labels(kind.value).inc(len(entries))
    return web.json_response({"accepted": len(entries)}, status=202)


def _version(name: str) -> Version | None:
    if name == "auto":
        return None
    try:
        return Version(name)
    except ValueError:
        raise ApiError(400, "format must be auto, new, migrated or old") from None


async def _body(request: web.Request, limit: int, held: Reservation) -> bytes:
    raw = await read_body(request)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported: use gzip")
    return _inflate(raw, limit, held)


def _inflate(raw: bytes, limit: int, held: Reservation) -> bytes:
    """The inflated body, taken from the budget as it grows."""
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, told from the header
    parts: list[bytes] = []
    size = 0
    pending = raw
    while True:
        try:
            part = inflater.decompress(pending, _INFLATE_STEP_BYTES)
        except zlib.error:
            raise ApiError(400, "the body is not valid gzip", "invalid_body") from None
        size += len(part)
        if size > limit:
            raise ApiError(413, f"the body is over {limit} bytes once decompressed")
        held.grow(len(part))
        parts.append(part)
        pending = inflater.unconsumed_tail
        if not pending and len(part) < _INFLATE_STEP_BYTES:
            break
    if not inflater.eof:
        raise ApiError(400, "the gzip body is truncated", "invalid_body")
    return b"".join(parts)


@web.middleware
async def count_rejections(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``streamer_ingest_requests_rejected_total`` by HTTP status: every ingest answer of 400
    and above, whoever gave it (authentication, the body limit, the handler). Outermost, so it
    sees the answer the client gets."""
    response = await handler(request)
    if response.status >= 400 and request.path.startswith(_INGEST_PREFIX):
        request.app[SERVICES].metrics.rejected.labels(str(response.status)).inc()
    return response


routes = [
    web.post(_INGEST_PREFIX + "events", ingest_events),
    web.post(_INGEST_PREFIX + "usage", ingest_usage),
]
