"""The JetStream backend's ``Store``: key-value buckets, each mirrored in memory by a watch.

Buckets (file storage, ``STREAMER_NATS_REPLICAS`` copies, the latest value of each key):

- ``streamer-streams``: ``<stream id>`` → organisation, definition, status, error, creation;
- ``streamer-positions``: ``<stream id>`` → the stream's position (its worker's only write);
- ``streamer-dead-letters``: ``<stream id>.<offset>`` → kind, body, reason, time, queued;
- ``streamer-tokens``: ``<hex digest>`` → id, role, organisation, name, creation;
- ``streamer-callbacks``: ``<callback id>`` → organisation and URL (the legacy API's);
- ``streamer-ids``: the last id given to a stream, a token and a callback (compare-and-set).

Every bucket but the ids is watched from the start: the watch loads the bucket, then applies
every change any replica makes, within milliseconds. Reads answer from that mirror; a write
returns once JetStream stored it and is in this process's mirror at once (a later revision
from the watch replaces it; an older one never does).

A dead letter's id is its stream and offset in one number (``stream << 48 | offset``): the
store finds the key from the id alone, and the oldest record comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from schemas import Kind
from streamer.log.base import (
    CallbackRow,
    DeadLetter,
    LogError,
    Position,
    Stream,
    StreamError,
    StreamStatus,
    TokenRow,
)
from streamer.log.nats_connection import REQUEST_TIMEOUT_SECS, NatsOptions, close, connect, failures
from streamer.spec import StreamSpec

__all__ = ["KvStore", "Mirror"]

_OFFSET_BITS = 48
_STREAMS, _POSITIONS, _LETTERS, _TOKENS, _CALLBACKS, _IDS = (
    "streamer-streams",
    "streamer-positions",
    "streamer-dead-letters",
    "streamer-tokens",
    "streamer-callbacks",
    "streamer-ids",
)
_MIRRORED = (_STREAMS, _POSITIONS, _LETTERS, _TOKENS, _CALLBACKS)


class Mirror:
    """One bucket's keys and values as the watch last saw them (or this process wrote)."""

    def __init__(self, bucket: KeyValue) -> None:
        self.bucket = bucket
        self.values: dict[str, tuple[int, bytes]] = {}
        self.loaded = asyncio.Event()
        self._watcher: KeyValue.KeyWatcher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watcher = await self.bucket.watchall()
        self._task = asyncio.create_task(self._follow(self._watcher), name="kv-watch")
        await asyncio.wait_for(self.loaded.wait(), REQUEST_TIMEOUT_SECS * 4)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the bucket's values so far are all in
                self.loaded.set()
                continue
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            self.apply(entry.key, entry.revision, None if deleted else entry.value)

    def apply(self, key: str, revision: int, value: bytes | None) -> None:
        known = self.values.get(key)
        if known is not None and known[0] >= revision:
            return
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = (revision, value)

    def get(self, key: str) -> Any:
        known = self.values.get(key)
        return None if known is None else orjson.loads(known[1])

    def items(self) -> list[tuple[str, Any]]:
        return [(key, orjson.loads(value)) for key, (_, value) in self.values.items()]

    async def put(self, key: str, value: Any) -> None:
        data = orjson.dumps(value)
        revision = await self.bucket.put(key, data)
        self.apply(key, revision, data)

    async def create(self, key: str, value: Any) -> None:
        """Put ``value`` unless the key holds one (``KeyWrongLastSequenceError``)."""
        data = orjson.dumps(value)
        revision = await self.bucket.create(key, data)
        self.apply(key, revision, data)

    async def delete(self, key: str) -> None:
        await self.bucket.delete(key)
        self.values.pop(key, None)

    async def stop(self) -> None:
        """Stop the watch; one that cannot be stopped within ``REQUEST_TIMEOUT_SECS`` (its
        unsubscription waits on the connection) is left to closing the connection."""
        if self._watcher is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await asyncio.wait_for(self._watcher.stop(), REQUEST_TIMEOUT_SECS)  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()  # the watch ends its loop itself, unless it could not stop
            await asyncio.gather(self._task, return_exceptions=True)


class KvStore:
    """The ``Store`` on JetStream key-value buckets. Open with ``await KvStore.open(options)``."""

    def __init__(self, client: Client, ids: KeyValue, mirrors: dict[str, Mirror]) -> None:
        self._client = client
        self._ids = ids
        self._streams = mirrors[_STREAMS]
        self._positions = mirrors[_POSITIONS]
        self._letters = mirrors[_LETTERS]
        self._tokens = mirrors[_TOKENS]
        self._callbacks = mirrors[_CALLBACKS]
        self._mirrors = list(mirrors.values())
        self._specs: dict[str, tuple[str, StreamSpec]] = {}  # stream id → its spec, parsed

    @classmethod
    async def open(cls, options: NatsOptions) -> KvStore:
        client = await connect(options, "store")
        try:
            with failures("opening the store's buckets", client):
                js = client.jetstream(timeout=REQUEST_TIMEOUT_SECS)
                buckets = {name: await _bucket(js, name, options.replicas) for name in _MIRRORED}
                ids = await _bucket(js, _IDS, options.replicas)
                mirrors = {name: Mirror(bucket) for name, bucket in buckets.items()}
                for mirror in mirrors.values():
                    await mirror.start()
        except BaseException:
            await close(client)
            raise
        return cls(client, ids, mirrors)

    async def _next_id(self, name: str) -> int:
        """The next id of ``name`` (``stream``, ``token``, ``callback``), unique across
        replicas: a compare-and-set on the bucket of ids."""
        with failures("numbering a new " + name, self._client):
            while True:
                try:
                    entry = await self._ids.get(name)
                except nats.js.errors.NotFoundError:
                    try:
                        await self._ids.create(name, b"1")
                    except nats.js.errors.KeyWrongLastSequenceError:
                        continue
                    return 1
                following = int(entry.value or b"0") + 1
                try:
                    await self._ids.update(name, str(following).encode(), last=entry.revision)
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue
                return following

    # -- streams -------------------------------------------------------------------------------

    async def create_stream(self, organisation: int, spec: StreamSpec, offset: int) -> Stream:
        stream_id = await self._next_id("stream")
        stream = Stream(
            stream_id,
            organisation,
            spec,
            StreamStatus.PENDING,
            None,
            _now(),
            Position(offset),
        )
        with failures("storing a new stream", self._client):
            await self._positions.put(str(stream_id), _position(stream.position))
            await self._streams.put(str(stream_id), _definition(stream))
        return stream

    async def streams(self) -> list[Stream]:
        """Every stream; a definition is parsed again only once it changed (the engine asks
        for them all twice a second)."""
        found = []
        specs = {}
        for key, stored in self._streams.items():
            position = self._positions.get(key)
            if position is None:
                continue
            known = self._specs.get(key)
            if known is None or known[0] != stored["spec"]:
                known = stored["spec"], StreamSpec.model_validate_json(stored["spec"])
            specs[key] = known
            found.append(_stream(int(key), stored, known[1], position))
        self._specs = specs
        return sorted(found, key=lambda stream: stream.id)

    async def define_stream(self, stream_id: int, spec: StreamSpec) -> None:
        await self._change(stream_id, spec=spec.model_dump_json())

    async def set_status(
        self, stream_id: int, status: StreamStatus, error: StreamError | None
    ) -> None:
        await self._change(stream_id, status=int(status), error=error)

    async def _change(self, stream_id: int, **changes: Any) -> None:
        stored = self._streams.get(str(stream_id))
        if stored is None:
            raise LogError(f"stream {stream_id} is not in the store")
        with failures("storing a stream", self._client):
            await self._streams.put(str(stream_id), {**stored, **changes})

    async def commit_position(self, stream_id: int, position: Position) -> None:
        with failures("storing a stream's position", self._client):
            await self._positions.put(str(stream_id), _position(position))

    async def delete_stream(self, stream_id: int) -> None:
        with failures("deleting a stream", self._client):
            await self._streams.delete(str(stream_id))
            await self._positions.delete(str(stream_id))
            for key in self._letter_keys(stream_id):
                await self._letters.delete(key)

    # -- dead letters --------------------------------------------------------------------------

    def _letter_keys(self, stream_id: int) -> list[str]:
        prefix = f"{stream_id}."
        return [key for key in self._letters.values if key.startswith(prefix)]

    async def add_dead_letters(
        self, stream_id: int, letters: Sequence[tuple[int, Kind, bytes, str]]
    ) -> None:
        at = _now()
        with failures("storing dead letters", self._client):
            for offset, kind, body, reason in letters:
                letter = {"kind": kind.value, "body": body.decode(), "reason": reason, "at": at}
                await self._letters.put(f"{stream_id}.{offset}", {**letter, "queued": False})

    async def dead_letters(
        self, stream_id: int, *, queued_only: bool = False, limit: int = 1000
    ) -> list[DeadLetter]:
        found = []
        for key in self._letter_keys(stream_id):
            stored = self._letters.get(key)
            if stored is None or (queued_only and not stored["queued"]):
                continue
            offset = int(key.partition(".")[2])
            found.append(
                DeadLetter(
                    stream_id << _OFFSET_BITS | offset,
                    offset,
                    Kind(stored["kind"]),
                    stored["body"].encode(),
                    stored["reason"],
                    stored["at"],
                    stored["queued"],
                )
            )
        found.sort(key=lambda letter: letter.offset)
        return found[:limit]

    async def requeue_dead_letters(self, stream_id: int) -> int:
        requeued = 0
        with failures("queueing dead letters", self._client):
            for key in self._letter_keys(stream_id):
                stored = self._letters.get(key)
                if stored is not None and not stored["queued"]:
                    await self._letters.put(key, {**stored, "queued": True})
                    requeued += 1
        return requeued

    async def queued_replays(self) -> set[int]:
        # without parsing every letter: in JSON, that key and value can only be the field
        # (a quote inside a string is escaped)
        return {
            int(key.partition(".")[0])
            for key, (_, value) in self._letters.values.items()
            if b'"queued":true' in value
        }

    async def drop_dead_letters(self, ids: Sequence[int]) -> None:
        mask = (1 << _OFFSET_BITS) - 1
        with failures("dropping dead letters", self._client):
            for ident in ids:
                await self._letters.delete(f"{ident >> _OFFSET_BITS}.{ident & mask}")

    # -- tokens --------------------------------------------------------------------------------

    async def add_token(self, digest: bytes, role: str, organisation: int | None, name: str) -> int:
        token_id = await self._next_id("token")
        stored = {
            "id": token_id,
            "role": role,
            "organisation": organisation,
            "name": name,
            "created_at": _now(),
        }
        with failures("storing a token", self._client):
            try:
                await self._tokens.create(digest.hex(), stored)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise LogError("adding a token failed: a token with this digest exists") from None
        return token_id

    async def token(self, digest: bytes) -> TokenRow | None:
        stored = self._tokens.get(digest.hex())
        return None if stored is None else _token(digest.hex(), stored)

    async def tokens(self) -> list[TokenRow]:
        rows = [_token(key, stored) for key, stored in self._tokens.items()]
        return sorted(rows, key=lambda row: row.id)

    async def delete_token(self, token_id: int) -> bool:
        for row in await self.tokens():
            if row.id == token_id:
                with failures("deleting a token", self._client):
                    await self._tokens.delete(row.digest.hex())
                return True
        return False

    # -- legacy API callbacks ------------------------------------------------------------------

    async def add_callback(self, organisation: int, url: str) -> int:
        callback_id = await self._next_id("callback")
        with failures("storing an API callback", self._client):
            await self._callbacks.put(str(callback_id), {"organisation": organisation, "url": url})
        return callback_id

    async def callbacks(self) -> list[CallbackRow]:
        rows = [
            CallbackRow(int(key), stored["organisation"], stored["url"])
            for key, stored in self._callbacks.items()
        ]
        return sorted(rows)

    async def delete_callback(self, callback_id: int) -> None:
        with failures("deleting an API callback", self._client):
            await self._callbacks.delete(str(callback_id))

    async def aclose(self) -> None:
        await asyncio.gather(*(mirror.stop() for mirror in self._mirrors))
        await close(self._client)


async def _bucket(js: nats.js.JetStreamContext, name: str, replicas: int) -> KeyValue:
    """The bucket ``name``, created if it is not there yet (by whichever replica is first)."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        config = KeyValueConfig(bucket=name, storage=StorageType.FILE, replicas=replicas)
        return await js.create_key_value(config)


def _definition(stream: Stream) -> dict[str, Any]:
    return {
        "organisation": stream.organisation,
        "spec": stream.spec.model_dump_json(),
        "status": int(stream.status),
        "error": stream.error,
        "created_at": stream.created_at,
    }


def _position(position: Position) -> dict[str, Any]:
    return {
        "offset": position.offset,
        "delivered": position.delivered,
        "last_delivery_at": position.last_delivery_at,
        "last_result_code": position.last_result_code,
        "inflight": position.inflight,
    }


def _stream(
    stream_id: int, stored: dict[str, Any], spec: StreamSpec, position: dict[str, Any]
) -> Stream:
    return Stream(
        id=stream_id,
        organisation=stored["organisation"],
        spec=spec,
        status=StreamStatus(stored["status"]),
        error=stored["error"],
        created_at=stored["created_at"],
        position=Position(**position),
    )


def _token(key: str, stored: dict[str, Any]) -> TokenRow:
    return TokenRow(
        stored["id"],
        bytes.fromhex(key),
        stored["role"],
        stored["organisation"],
        stored["name"],
        stored["created_at"],
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
