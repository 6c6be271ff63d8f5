"""The composition root: settings in, a running service out. Only here (and in the settings)
are the concrete log backend and connectors known.

Shutdown, in order: (1) readiness turns 503 and ingest answers 503; (2) the listener closes
and in-flight requests finish; (3) streams finish their in-flight sends within
``shutdown_timeout_secs``, the rest are cancelled (their records stay unacknowledged and are
sent again after the restart); (4) connectors close; (5) the log closes. Ingest worker
processes stop between (2) and (3).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from streamer.api import health, ingest, legacy, openapi, streams
from streamer.api import tokens as token_api
from streamer.api.auth import auth_middleware
from streamer.api.budget import IngestBudget
from streamer.api.errors import error_middleware
from streamer.api.ratelimit import RateLimiter, rate_limit_middleware
from streamer.api.services import SERVICES, Services
from streamer.auth import Tokens
from streamer.config import Settings
from streamer.destinations import connector_factory
from streamer.fanout.engine import Fanout
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import Log, LogError
from streamer.log.sqlite import SqliteLog
from streamer.metrics import Metrics
from streamer.records import BodyReaders, default_workers

__all__ = ["create_app", "open_log"]

_log = structlog.get_logger("streamer")
_TRIM_EVERY_SECS = 300.0


async def open_log(settings: Settings, *, service: bool = False) -> Log:
    """The configured log; ``service``: for the process that appends (one per data dir)."""
    if settings.log_backend != "sqlite":
        raise LogError(f"log backend {settings.log_backend!r} is not available in this build")
    return await SqliteLog.open(settings.data_dir, settings.sync, exclusive=service)


async def create_app(settings: Settings) -> web.Application:
    """Open the log, start every stream and return the HTTP application."""
    limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_secs)
    app = web.Application(
        middlewares=[
            ingest.count_rejections,
            error_middleware,
            rate_limit_middleware(limiter),
            auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    log = await open_log(settings, service=True)
    metrics = Metrics()
    tokens = Tokens(log)
    if settings.bootstrap_token is not None:
        await tokens.ensure(settings.bootstrap_token.get_secret_value(), "admin", "bootstrap")
    policy = RetryPolicy(settings.retry_max_secs, settings.retry_base_secs, settings.retry_cap_secs)
    fanout = Fanout(
        log,
        connector_factory(settings),
        policy=policy,
        metrics=metrics,
        linger_secs=settings.linger_ms / 1000,
    )
    workers = default_workers() if settings.ingest_workers is None else settings.ingest_workers
    app[SERVICES] = Services(
        settings,
        log,
        fanout,
        tokens,
        metrics,
        BodyReaders(workers),
        IngestBudget(settings.max_inflight_ingest_bytes),
    )
    app.add_routes(
        [
            *health.routes,
            *ingest.routes,
            *streams.routes,
            *legacy.routes,
            *token_api.routes,
            *openapi.routes,
        ]
    )
    app.cleanup_ctx.append(_lifespan)
    return app


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    await services.fanout.start()
    trimmer = asyncio.create_task(_trim(services), name="retention")
    yield
    services.draining = True
    trimmer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trimmer
    await asyncio.to_thread(services.readers.close)  # lets the last parses finish
    await services.fanout.stop(services.settings.shutdown_timeout_secs)
    await services.log.aclose()


async def _trim(services: Services) -> None:
    """Drop records older than the retention age, now and every few minutes."""
    older_than = services.settings.retention_days * 86400
    while True:
        dropped = await services.log.trim(older_than)
        if dropped:
            _log.info("retention trimmed the log", records=dropped)
        await asyncio.sleep(_TRIM_EVERY_SECS)
