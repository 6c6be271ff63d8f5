"""Fixtures shared by the connector suites: real protocol peers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.receivers import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An HTTP receiver on ``127.0.0.1`` that answers 200 until scripted otherwise."""
    async with Receiver() as started:
        yield started
