"""Probes and metrics: ``/health/live``, ``/health/ready``, ``/metrics`` (no auth)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.api.services import SERVICES

__all__ = ["routes"]


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    """503 while draining, or while ingest cannot read bodies (no worker can run). Streams
    whose delivery waits out the service's own error (a full disk, a database error) are
    listed under ``delivery_held`` with that error; the service is still ready."""
    services = request.app[SERVICES]
    if services.draining:
        return web.json_response({"status": "draining"}, status=503)
    reason = await services.readers.unready()
    if reason is not None:
        return web.json_response({"status": "not_ready", "reason": reason}, status=503)
    held = services.fanout.troubles()
    if held:
        detail = {str(stream_id): error for stream_id, error in sorted(held.items())}
        return web.json_response({"status": "ready", "delivery_held": detail})
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICES].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


routes = [
    web.get("/health/live", live),
    web.get("/health/ready", ready),
    web.get("/metrics", metrics),
]
