"""Fixtures of the management-API suite: the application on loopback, and a webhook receiver.

``start_service(**settings)`` starts the app on a fresh data directory with the suite's
defaults (the bootstrap token ``ADMIN``, private destinations allowed, a rate limit high
enough not to matter, Datadog and KeenIO at a closed loopback port) overridden by
``settings``; every service is closed at the end of the test, which runs the app's cleanup
(streams stopped, log closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from streamer.config import Settings
from tests.api.harness import ADMIN, Service
from tests.receivers import Receiver

StartService = Callable[..., Awaitable[Service]]


def settings(data_dir: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "data_dir": data_dir,
        "bootstrap_token": SecretStr(ADMIN),
        "allow_private_destinations": True,
        "rate_limit_requests": 100_000,
        "linger_ms": 0,
        "retry_max_secs": 2.0,
        "retry_base_secs": 0.05,
        "shutdown_timeout_secs": 2.0,
        # Datadog and KeenIO streams never reach the Internet from a test: a closed port
        "datadog_url": "http://127.0.0.1:9",
        "keenio_url": "http://127.0.0.1:9",
    }
    return Settings(**{**defaults, **overrides})


@pytest.fixture
async def start_service(tmp_path: Path) -> AsyncIterator[StartService]:
    services: list[Service] = []

    async def start(**overrides: Any) -> Service:
        data_dir = tmp_path / f"service-{len(services)}"
        data_dir.mkdir()
        service = await Service.start(settings(data_dir, **overrides))
        services.append(service)
        return service

    yield start
    for service in services:
        await service.aclose()


@pytest.fixture
async def service(start_service: StartService) -> Service:
    return await start_service()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook destination on 127.0.0.1 answering 200 until scripted otherwise."""
    async with Receiver() as started:
        yield started
