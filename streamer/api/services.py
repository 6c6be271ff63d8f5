"""What the request handlers reach: one typed application key holding the running services."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from streamer.api.budget import IngestBudget
from streamer.auth import Tokens
from streamer.config import Settings
from streamer.fanout.engine import Fanout
from streamer.log.base import Log
from streamer.metrics import Metrics
from streamer.records import BodyReaders

__all__ = ["SERVICES", "Services"]


@dataclass(slots=True)
class Services:
    settings: Settings
    log: Log
    fanout: Fanout
    tokens: Tokens
    metrics: Metrics
    readers: BodyReaders
    ingest_budget: IngestBudget
    draining: bool = False


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
