"""What the request handlers reach: one typed application key holding the running services."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from streamer.auth import Tokens
from streamer.config import Settings
from streamer.fanout.engine import Fanout
from streamer.log.base import Log, Store
from streamer.metrics import Metrics
from streamer.records import BodyReaders
from streamer.shutdown import ShutdownBudget

__all__ = ["SERVICES", "Services"]


@dataclass(slots=True)
class Services:
    settings: Settings
    log: Log
    store: Store
    fanout: Fanout
    tokens: Tokens
    metrics: Metrics
    readers: BodyReaders
    draining: bool = False
    shutdown: ShutdownBudget | None = None

    def begin_shutdown(self) -> ShutdownBudget:
        """Stop taking ingest and start the shutdown budget's clock (once: a second call
        returns the running budget)."""
        self.draining = True
        if self.shutdown is None:
            self.shutdown = ShutdownBudget(self.settings.shutdown_timeout_secs)
        return self.shutdown


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
