"""``streamer run``: serve until SIGTERM or SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import gc
import resource
import signal

import structlog
from aiohttp import web

from streamer.api.protocol import JsonErrorRunner
from streamer.api.services import SERVICES
from streamer.app import create_app
from streamer.config import Settings
from streamer.redact import mask_urls
from streamer.shutdown import http_drain_secs

__all__ = ["ListenError", "serve", "stop_on_signals"]


class ListenError(Exception):
    """The listener cannot be opened (the port is taken, the address is not this host's)."""


_log = structlog.get_logger("streamer")


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT (Ctrl-C) sets, instead of interrupting whatever runs.

    Taken first thing, so a signal during start-up ends in the same orderly shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve(settings: Settings) -> None:
    stop = stop_on_signals()
    _raise_file_limit()
    app = await create_app(settings)
    runner = JsonErrorRunner(
        app,
        auto_decompress=False,  # ingest inflates gzip itself, within the body limit
        access_log=None,
        handle_signals=False,
        shutdown_timeout=http_drain_secs(settings.shutdown_timeout_secs),
        # aiohttp closes a connection still without a whole request head this long after it
        # connected or got its last answer: the header read timeout (and the idle timeout)
        keepalive_timeout=settings.header_timeout_secs,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(f"cannot listen on {settings.listen}: {exc.strerror}") from None
    # What start-up made (modules, schemas, the loaded streams) lives as long as the process:
    # out of the cyclic collector's way, so its full passes walk only what came later; and
    # those passes come at most every 100 middle-generation passes instead of 10 (with
    # thousands of streams' records in flight, they were a large share of the service's CPU).
    # A young pass every 20,000 new objects, not 700: most of what a request or a batch makes
    # is gone by then and is never walked (with 1,000 streams the collector's time fell from
    # 0.33 s to 0.12 s over 200,000 records).
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before "listening": a signal sent on
        loop.add_signal_handler(signum, stop.set)  # reading that line must stop gracefully
    host, port = runner.addresses[0][:2]
    _log.info(
        "listening",
        url=f"http://{host}:{port}",
        data_dir=str(settings.data_dir),
        backend=settings.log_backend,
        **({"nats": mask_urls(settings.nats_url)} if settings.log_backend == "nats" else {}),
    )
    await stop.wait()
    _log.info("shutting down")
    app[SERVICES].begin_shutdown()  # the budget runs from the signal
    await runner.cleanup()
    _log.info("stopped")


def _raise_file_limit() -> None:
    """Open files (one per connection) up to the hard limit: the common soft limit of 1,024
    is reached by a few hundred idle clients plus the log and the connectors' sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        _log.warning("cannot raise the open-file limit", soft=soft, hard=hard, error=str(exc))
        return
    _log.info("raised the open-file limit", soft=hard, was=soft)
