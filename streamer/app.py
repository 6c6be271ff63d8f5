"""The composition root: settings in, a running service out. Only here (and in the settings)
are the concrete log backend and connectors known.

Shutdown, in order, all within ``shutdown_timeout_secs`` from the signal (the split of that
budget is ``streamer.shutdown``'s): (1) readiness turns 503 and ingest answers 503; (2) the
listener closes and in-flight requests finish; (3) ingest worker processes exit; (4) streams
finish their in-flight sends, the rest are cancelled (their records stay unacknowledged and
are sent again after the restart); (5) connectors close; (6) the store and the log close.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from connectors.http import Sessions
from streamer.activity import log_summaries
from streamer.api import api_callback, authenticate, health, ingest, legacy, openapi, streams
from streamer.api import tokens as token_api
from streamer.api.auth import auth_middleware
from streamer.api.budget import IngestBudget
from streamer.api.errors import error_middleware
from streamer.api.ratelimit import RateLimiter, rate_limit_middleware
from streamer.api.services import SERVICES, Services
from streamer.auth import Tokens
from streamer.callbacks import ApiCallbacks
from streamer.config import Settings
from streamer.destinations import connector_factory
from streamer.fanout.engine import Fanout
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import Log, Store
from streamer.log.jetstream import JetStreamLog
from streamer.log.kv import KvStore
from streamer.log.leases import KvLeases
from streamer.log.nats_connection import NatsOptions, warn_loose_secret_files
from streamer.log.sqlite import SqliteLog
from streamer.metrics import Metrics
from streamer.records import BodyReaders, default_workers

__all__ = ["create_app", "nats_options", "open_store"]

_log = structlog.get_logger("streamer")
_TRIM_EVERY_SECS = 300.0
_SESSIONS = web.AppKey("http sessions", Sessions)  # the destinations' shared client sessions
_LEASES: web.AppKey[KvLeases | None] = web.AppKey("leases")


async def _open_sqlite(settings: Settings, *, service: bool) -> SqliteLog:
    return await SqliteLog.open(
        settings.data_dir,
        settings.sync,
        exclusive=service,
        memory_bytes=settings.log_memory_mib * 2**20,
    )


def nats_options(settings: Settings) -> NatsOptions:
    """How to reach NATS; warns once if a file of secrets is readable by others."""
    options = NatsOptions(
        settings.nats_url,
        settings.nats_replicas,
        settings.nats_tls_ca_file,
        settings.nats_tls_cert_file,
        settings.nats_tls_key_file,
        settings.nats_creds_file,
        settings.nats_nkey_seed_file,
    )
    warn_loose_secret_files(options)
    return options


async def open_store(settings: Settings) -> Store:
    """The configured store, beside a running service (tokens and streams only)."""
    if settings.log_backend == "nats":
        return await KvStore.open(nats_options(settings))
    return await _open_sqlite(settings, service=False)


async def _open(settings: Settings) -> tuple[Log, Store, KvLeases | None]:
    """The configured log and store, for the service (SQLite: one per data directory), and the
    leases that share the streams out among replicas (JetStream: any number on one NATS)."""
    if settings.log_backend == "sqlite":
        backend = await _open_sqlite(settings, service=True)
        return backend, backend, None
    options = nats_options(settings)
    async with contextlib.AsyncExitStack() as opening:
        log = await JetStreamLog.open(options, settings.retention_days * 86400)
        opening.push_async_callback(log.aclose)
        store = await KvStore.open(options)
        opening.push_async_callback(store.aclose)
        leases = await KvLeases.open(options)
        opening.pop_all()
    return log, store, leases


async def create_app(settings: Settings) -> web.Application:
    """Open the log, start every stream and return the HTTP application."""
    limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_secs)
    app = web.Application(
        middlewares=[
            ingest.count_rejections,
            error_middleware,
            rate_limit_middleware(limiter),
            auth_middleware,
            _receiving_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    log, store, leases = await _open(settings)
    metrics = Metrics()
    tokens = Tokens(store)
    if settings.bootstrap_token is not None:
        await tokens.ensure(settings.bootstrap_token.get_secret_value(), "admin", "bootstrap")
    policy = RetryPolicy(settings.retry_max_secs, settings.retry_base_secs, settings.retry_cap_secs)
    sessions = Sessions()
    fanout = Fanout(
        log,
        store,
        connector_factory(settings, sessions),
        policy=policy,
        metrics=metrics,
        linger_secs=settings.linger_ms / 1000,
        max_wait_secs=settings.batch_max_wait_ms / 1000,
        leases=leases,
    )
    if isinstance(log, JetStreamLog):  # other replicas' appends wake this one's streams
        log.on_arrivals(fanout.arrived)
    if isinstance(log, SqliteLog):  # a paused stream's backlog is read from the database
        log.keep_warm_for(fanout.listens)
    workers = default_workers() if settings.ingest_workers is None else settings.ingest_workers
    readers = BodyReaders(
        workers, settings.ingest_timeout_secs, on_lost=metrics.ingest_workers_lost.inc
    )
    budget = IngestBudget(settings.max_inflight_ingest_bytes)
    app[SERVICES] = Services(settings, log, store, fanout, tokens, metrics, readers, budget)
    app[_SESSIONS] = sessions
    app[_LEASES] = leases
    callbacks = ApiCallbacks(store)
    await callbacks.import_file(settings.data_dir / "api_callbacks.json")
    app[api_callback.CALLBACKS] = callbacks
    app.add_routes(
        [
            *health.routes,
            *ingest.routes,
            *streams.routes,
            *legacy.routes,
            *token_api.routes,
            *authenticate.routes,
            *api_callback.routes,
            *openapi.routes,
        ]
    )
    app.cleanup_ctx.append(_lifespan)
    return app


@web.middleware
async def _receiving_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ingest requests in progress tell the fan-out that records are on their way in."""
    if not request.path.startswith("/api/v1/ingest/"):
        return await handler(request)
    with request.app[SERVICES].fanout.receiving():
        return await handler(request)


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    await services.fanout.start()
    background = [
        asyncio.create_task(_trim(services), name="retention"),
        asyncio.create_task(services.fanout.follow(), name="follow the store"),
        asyncio.create_task(
            log_summaries(services.metrics, services.settings.summary_interval_secs),
            name="delivery summary",
        ),
    ]
    yield
    budget = services.begin_shutdown()  # begun at the signal; the HTTP drain is over
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await services.readers.close(budget.close_secs())
    await services.fanout.stop(budget.delivery_drain_secs())
    await app[_SESSIONS].aclose()
    leases = app[_LEASES]
    if leases is not None:
        await leases.aclose()
    await services.store.aclose()
    await services.log.aclose()


async def _trim(services: Services) -> None:
    """Drop records older than the retention age, now and every few minutes."""
    older_than = services.settings.retention_days * 86400
    while True:
        dropped = await services.log.trim(older_than)
        if dropped:
            _log.info("retention trimmed the log", records=dropped)
        await asyncio.sleep(_TRIM_EVERY_SECS)
