"""Fixtures of the fan-out tests: a real log and store (SQLite in a temporary directory, and
JetStream on a ``nats-server`` of the test's own), and the engine over it
(``tests/fanout/doubles.py``), stopped at the end of each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fanout.doubles import Harness
from tests.log.backends import BACKENDS, LogAndStore, open_combined


@pytest.fixture(params=BACKENDS)
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogAndStore]:
    """The backend as one object that is its log and its store (as ``SqliteLog`` is)."""
    async with open_combined(request.param, tmp_path) as log:
        yield log


@pytest.fixture
async def h(log: LogAndStore) -> AsyncIterator[Harness]:
    harness = Harness(log)
    yield harness
    try:
        await asyncio.wait_for(harness.fanout.stop(1.0), 10)
    finally:
        await _cancel_leftover_workers()


async def _cancel_leftover_workers() -> None:
    """Workers the engine lost track of (a bug) must not outlive their test."""
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("stream-") and not task.done()
    ]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
