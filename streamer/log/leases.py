"""Leases on data streams in the JetStream key-value bucket ``streamer-leases``: one replica
delivers a stream at a time, which keeps per-device order and S3's stable batches.

A lease is the key ``<stream id>`` holding the replica's id. It is taken with a create (which
fails while another replica holds it) and renewed with a compare-and-set on its revision every
``LEASE_SECS / 3``; the bucket drops entries older than ``LEASE_SECS``, so the lease of a replica
that died (or lost NATS) is free after at most ``LEASE_SECS``. A replica counts a lease as its
own only while its last renewal is younger than ``LEASE_SECS`` less a safety margin: one cut
off from NATS stops delivering before another can take its streams over. Every lease is
renewed (or tried) at once, not one after the other, so a look at the leases takes at most one
``REQUEST_TIMEOUT_SECS`` however many streams there are: with NATS away, the renewals of many
streams in turn would each wait that long, and the replica would learn too late that it lost
them. A replica watches the bucket, and tries to take a lease another one holds only once
it saw no renewal of it for ``LEASE_SECS``, not at every look. A replica that stops
gracefully deletes its leases, so others take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Collection

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from streamer.log.kv import Mirror
from streamer.log.nats_connection import (
    RECONNECTING,
    REQUEST_TIMEOUT_SECS,
    NatsOptions,
    close,
    connect,
)

__all__ = ["LEASE_SECS", "KvLeases"]

LEASE_SECS = 10.0
_RENEW_SECS = LEASE_SECS / 3
_TRUST_SECS = LEASE_SECS - REQUEST_TIMEOUT_SECS / 2  # a renewal still in flight may be lost
_BUCKET = "streamer-leases"
_log = structlog.get_logger("streamer.leases")


class KvLeases:
    """The ``Leases`` of one replica. Open with ``await KvLeases.open(options)``."""

    def __init__(self, client: Client, bucket: KeyValue, mirror: Mirror | None = None) -> None:
        """``mirror``: the bucket as a watch sees it, so that a lease another replica keeps
        renewing is not tried again and again (``None``: every lease not held is tried at
        every look)."""
        self._client = client
        self._bucket = bucket
        self._mirror = mirror
        self.holder = os.urandom(8).hex()
        self._held: dict[int, tuple[int, float]] = {}  # stream id → revision, renewed at
        self._renewed: dict[str, tuple[int, float]] = {}  # others': revision, first seen at

    @classmethod
    async def open(cls, options: NatsOptions) -> KvLeases:
        client = await connect(options, "leases")
        js = client.jetstream(timeout=REQUEST_TIMEOUT_SECS)
        config = KeyValueConfig(
            bucket=_BUCKET, storage=StorageType.FILE, replicas=options.replicas, ttl=LEASE_SECS
        )
        try:
            try:
                bucket = await js.key_value(_BUCKET)
            except nats.js.errors.BucketNotFoundError:
                bucket = await js.create_key_value(config)
            mirror = Mirror(bucket)
            await mirror.start()
        except (nats.errors.Error, TimeoutError):
            await close(client)
            raise
        return cls(client, bucket, mirror)

    async def hold(self, stream_ids: Collection[int]) -> set[int]:
        ids = list(stream_ids)
        if self._client.is_connected:
            errors = await asyncio.gather(*(self._keep(stream_id) for stream_id in ids))
            failed = [(i, error) for i, error in zip(ids, errors, strict=True) if error is not None]
        else:  # no request is made while reconnecting: it could only fail
            failed = [(i, RECONNECTING) for i in ids if i in self._held]
        if failed:  # NATS away: one line per look, however many streams
            _log.warning(
                "renewing streams' leases failed",
                streams=len(failed),
                first=failed[0][0],
                error=failed[0][1],
            )
        now = time.monotonic()
        return {
            stream_id
            for stream_id in ids
            if stream_id in self._held and now - self._held[stream_id][1] < _TRUST_SECS
        }

    async def _keep(self, stream_id: int) -> str | None:
        """Renew the lease if it is due, or try to take it; a failure leaves it to expire
        (returned: why NATS failed, if it did)."""
        key, value = str(stream_id), self.holder.encode()
        held = self._held.get(stream_id)
        now = time.monotonic()
        try:
            if held is None:
                if self._renewed_elsewhere(key, now):
                    return None
                revision = await self._bucket.create(key, value)
            elif now - held[1] >= _RENEW_SECS:
                revision = await self._bucket.update(key, value, last=held[0])
            else:
                return None
        except nats.js.errors.KeyWrongLastSequenceError:  # another replica holds it
            if held is not None:
                _log.warning("lost the lease of a stream", stream=stream_id)
            self._held.pop(stream_id, None)
            return None
        except (nats.errors.Error, TimeoutError) as exc:  # NATS away: the lease runs out
            return str(exc) or type(exc).__name__
        self._held[stream_id] = (revision, now)
        return None

    def _renewed_elsewhere(self, key: str, now: float) -> bool:
        """Whether another replica renewed the lease ``key`` less than ``LEASE_SECS`` ago, as
        far as the watch tells: a new revision seen at one look, and none since for
        ``LEASE_SECS``, is a lease that ran out (expiry leaves no mark in the watch)."""
        known = None if self._mirror is None else self._mirror.values.get(key)
        if known is None or known[1] == self.holder.encode():  # free, or this one's own lost
            return False
        revision = known[0]
        seen = self._renewed.get(key)
        if seen is None or seen[0] != revision:
            self._renewed[key] = seen = (revision, now)
        return now - seen[1] < LEASE_SECS

    async def release(self, stream_ids: Collection[int]) -> None:
        await asyncio.gather(*(self._give_up(stream_id) for stream_id in stream_ids))

    async def _give_up(self, stream_id: int) -> None:
        held = self._held.pop(stream_id, None)
        if held is None or not self._client.is_connected:  # NATS away: it expires by itself
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):  # it expires by itself
            await self._bucket.delete(str(stream_id), last=held[0])

    async def aclose(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()
        await close(self._client)
