"""The leases of ``streamer/log/leases.py``: on a real ``nats-server``, and, for how long a look
at many leases may take when NATS does not answer, over a bucket double that never answers
until told to."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from streamer.log import leases as leases_module
from streamer.log.leases import KvLeases
from streamer.log.nats_connection import NatsOptions
from tests.e2e.harness import eventually
from tests.fanout.doubles import wait_for
from tests.nats_server import NatsServer


@pytest.mark.nats
async def test_a_lease_is_one_replicas_until_it_releases_it(nats_server: NatsServer) -> None:
    first = await KvLeases.open(NatsOptions(nats_server.url))
    second = await KvLeases.open(NatsOptions(nats_server.url))
    try:
        assert await first.hold([1, 2]) == {1, 2}
        assert await second.hold([1, 2, 3]) == {3}
        assert await first.hold([1, 2]) == {1, 2}  # still its own
        await first.release([1, 2])

        async def taken() -> bool:  # once the second's watch saw the release: milliseconds
            return await second.hold([1, 2, 3]) == {1, 2, 3}

        await eventually(taken, what="the released leases taken")
        assert await first.hold([1, 2, 3]) == set()
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.nats
async def test_a_lease_another_replica_keeps_renewing_is_not_tried_again_and_again(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trying every other replica's lease twice a second cost a fifth of a core with 1,000
    streams; the watch tells which ones are alive."""
    first = await KvLeases.open(NatsOptions(nats_server.url))
    assert await first.hold([1]) == {1}
    second = await KvLeases.open(NatsOptions(nats_server.url))  # its watch loads the lease
    tried: list[str] = []
    create = second._bucket.create

    async def counted(key: str, value: bytes) -> int:
        tried.append(key)
        return await create(key, value)

    monkeypatch.setattr(second._bucket, "create", counted)
    try:
        for _ in range(5):
            assert await second.hold([1, 2]) == {2}
        assert tried == ["2"]
        await first.release([1])

        async def taken() -> bool:
            return await second.hold([1, 2]) == {1, 2}

        await eventually(taken, what="the released lease taken")
    finally:
        await first.aclose()
        await second.aclose()


_CONNECTED = SimpleNamespace(is_connected=True)
"""A NATS connection that is up, for leases on a bucket double."""


class _SilentBucket:
    """A key-value bucket whose renewals and deletions wait for ``answer`` (NATS away)."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.waiting = 0
        self._revision = 0

    async def create(self, key: str, value: bytes) -> int:
        self._revision += 1
        return self._revision

    async def update(self, key: str, value: bytes, last: int) -> int:
        await self._wait()
        self._revision += 1
        return self._revision

    async def delete(self, key: str, last: int) -> None:
        await self._wait()

    async def _wait(self) -> None:
        self.waiting += 1
        await self.answer.wait()


async def test_every_held_lease_is_renewed_at_once_not_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With NATS away each renewal waits a whole request timeout: in turn, the last of many
    streams would learn it lost its lease long after another replica took it."""
    monkeypatch.setattr(leases_module, "_RENEW_SECS", 0.0)  # every look renews
    bucket = _SilentBucket()
    leases = KvLeases(cast(Any, _CONNECTED), cast(Any, bucket))
    assert await leases.hold([1, 2, 3]) == {1, 2, 3}
    looking = asyncio.create_task(leases.hold([1, 2, 3]))
    try:
        await wait_for(lambda: bucket.waiting == 3)
    finally:
        bucket.answer.set()
    assert await looking == {1, 2, 3}


async def test_every_lease_is_released_at_once_not_in_turn() -> None:
    """At shutdown the release has a short deadline: in turn, most leases would be left to
    run out, and the other replicas would wait for them."""
    bucket = _SilentBucket()
    leases = KvLeases(cast(Any, _CONNECTED), cast(Any, bucket))
    assert await leases.hold([1, 2, 3]) == {1, 2, 3}
    releasing = asyncio.create_task(leases.release([1, 2, 3]))
    try:
        await wait_for(lambda: bucket.waiting == 3)
    finally:
        bucket.answer.set()
    await releasing
