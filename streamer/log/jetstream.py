"""The JetStream backend's ``Log``: every record one message of the JetStream stream
``streamer-records`` (file storage, records older than the retention age dropped by the server,
``STREAMER_NATS_REPLICAS`` copies), its offset the stream sequence.

Subjects carry what readers select on: ``streamer.records.<organisation>.<kind>.<event type or
_>.<alert or _>``. A read is a short-lived pull consumer filtered on the lane's subjects
(``streamer.records.<organisation>.<kind>.>``) starting after the reader's position, so the
server hands over only that organisation's records of those kinds; the data stream's position
lives in the store (``commit_position``), not in the consumer, which is why the consumer needs
no acknowledgements and is deleted after the read.

An append publishes every record at once and waits for every acknowledgement; if one fails or
does not come within ``REQUEST_TIMEOUT_SECS``, the append raises ``LogError`` (ingest answers
503) and some of the records may be stored. Each message carries a ``Nats-Msg-Id`` made of a
digest of the whole append's bodies and the record's place in it, so the client's retry of the
same request is not stored twice within JetStream's duplicate window
(``DUPLICATE_WINDOW_SECS``): the retry's records get the ids, and the offsets, of the first
try's stored ones.

Replicas learn of each other's appends through a core NATS message on ``streamer.appended``
(the organisations and counts, and the last offset): it wakes their waiting streams. Such a
message is sent at most once (one sent while this replica reconnects is lost), so every
``_CHECK_SECS`` the log also asks JetStream for its last offset: records it did not hear of
wake every stream (their organisations are unknown), or they would wait for the next append.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Header,
    StorageType,
    StreamConfig,
)

from schemas import Kind
from streamer.log.base import Entry, Row
from streamer.log.nats_connection import REQUEST_TIMEOUT_SECS, NatsOptions, close, connect, failures

__all__ = ["DUPLICATE_WINDOW_SECS", "STREAM", "JetStreamLog"]

STREAM = "streamer-records"
_SUBJECT = "streamer.records"
_APPENDED = "streamer.appended"
DUPLICATE_WINDOW_SECS = 120.0
_CONSUMER_IDLE_SECS = 30.0  # a reader's consumer the server deletes if the reader vanished
_NONE = "_"
_V1_REPLY_TOKENS = 9

_CHECK_SECS = 1.0
Arrivals = Callable[[Mapping[int, int] | None], None]
"""Told, per organisation, how many records another replica appended (``None``: records of
organisations unknown, whose notice was lost)."""


class JetStreamLog:
    """The ``Log`` on JetStream. Open with ``await JetStreamLog.open(options, retention)``."""

    def __init__(self, client: Client, retention_secs: float, replicas: int) -> None:
        self._client = client
        self._retention_secs = retention_secs
        self._replicas = replicas
        self._last_offset = 0
        self._me = os.urandom(8).hex()  # tells this process's append notices from the others'
        self._arrivals: Arrivals | None = None
        self._notices: Subscription | None = None
        self._checking: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, options: NatsOptions, retention_secs: float) -> JetStreamLog:
        client = await connect(options, "log")
        log = cls(client, retention_secs, options.replicas)
        try:
            await log._ensure_stream()
            log._notices = await client.subscribe(_APPENDED, cb=log._noticed)
        except BaseException:
            await close(client)
            raise
        log._checking = asyncio.create_task(log._check(), name="log: last offset")
        return log

    def on_arrivals(self, arrivals: Arrivals) -> None:
        """Call ``arrivals`` whenever another replica appended records."""
        self._arrivals = arrivals

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=STREAM,
            subjects=[f"{_SUBJECT}.>"],
            storage=StorageType.FILE,
            max_age=self._retention_secs,
            num_replicas=self._replicas,
            duplicate_window=DUPLICATE_WINDOW_SECS,
        )
        manager = self._client.jsm(timeout=REQUEST_TIMEOUT_SECS)
        with failures("setting up the JetStream stream " + STREAM, self._client):
            try:
                await manager.stream_info(STREAM)
            except nats.js.errors.NotFoundError:
                info = await manager.add_stream(config)
            else:  # the retention age may have changed
                info = await manager.update_stream(config)
        self._last_offset = info.state.last_seq

    # -- records -----------------------------------------------------------------------------

    async def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self._last_offset
        digest = hashlib.blake2b(digest_size=12)
        for entry in entries:
            digest.update(entry.body)
            digest.update(b"\n")
        append_id = digest.hexdigest()
        acks = _Acks(len(entries))
        inbox = self._client.new_inbox()
        with failures("appending to the log", self._client):
            subscription = await self._client.subscribe(f"{inbox}.*", cb=acks.take)
            try:
                for index, entry in enumerate(entries):
                    await self._client.publish(
                        _subject(entry),
                        entry.body,
                        reply=f"{inbox}.{index}",
                        headers={"Nats-Msg-Id": f"{append_id}-{index}"},
                    )
                await asyncio.wait_for(acks.done.wait(), REQUEST_TIMEOUT_SECS)
            finally:
                await subscription.unsubscribe()
            acks.check()
        last = acks.last
        self._saw(last)
        await self._announce(entries, last)
        return last

    async def _announce(self, entries: Sequence[Entry], last: int) -> None:
        counts = Counter(entry.organisation for entry in entries)
        notice = {"from": self._me, "last": last, "counts": list(counts.items())}
        try:
            await self._client.publish(_APPENDED, orjson.dumps(notice))
        except nats.errors.Error:  # the others notice at their next read
            return

    async def _noticed(self, msg: Msg) -> None:
        notice = orjson.loads(msg.data)
        if notice["from"] == self._me:
            return
        self._saw(int(notice["last"]))
        if self._arrivals is not None:
            self._arrivals({int(org): int(count) for org, count in notice["counts"]})

    async def _check(self) -> None:
        """Every ``_CHECK_SECS``, learn of the records whose notice was lost."""
        manager = self._client.jsm(timeout=REQUEST_TIMEOUT_SECS)
        while True:
            await asyncio.sleep(_CHECK_SECS)
            if not self._client.is_connected:  # NATS away: nobody appends
                continue
            try:
                last = (await manager.stream_info(STREAM)).state.last_seq
            except (TimeoutError, nats.errors.Error):  # NATS away: nobody appends
                continue
            if last > self._last_offset:  # what notices told meanwhile counts too
                self._saw(last)
                if self._arrivals is not None:
                    self._arrivals(None)

    def _saw(self, offset: int) -> None:
        self._last_offset = max(self._last_offset, offset)

    @property
    def last_offset(self) -> int:
        return self._last_offset

    async def read(
        self, organisation: int, kinds: Collection[Kind], after: int, limit: int
    ) -> list[Row]:
        ceiling = self._last_offset
        if after >= ceiling or limit <= 0:
            return []
        with failures("reading the log", self._client):
            name, pending = await self._reader(organisation, kinds, after)
            try:
                wanted = min(limit, pending)
                messages = await self._fetch(name, wanted) if wanted else []
            finally:
                await self._drop_reader(name)
        rows = []
        for msg in messages:
            offset = _stream_sequence(msg.reply)
            if offset > ceiling:
                break
            rows.append(_row(msg, offset))
        return rows

    async def pending(self, organisation: int, kinds: Collection[Kind], after: int) -> int:
        with failures("counting a stream's pending records", self._client):
            name, pending = await self._reader(organisation, kinds, after)
            await self._drop_reader(name)
        return pending

    async def _reader(
        self, organisation: int, kinds: Collection[Kind], after: int
    ) -> tuple[str, int]:
        """A consumer of the lane's records after ``after``; its name and how many it has."""
        config = ConsumerConfig(
            filter_subjects=[f"{_SUBJECT}.{organisation}.{kind.value}.>" for kind in kinds],
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_CONSUMER_IDLE_SECS,
            mem_storage=True,
            num_replicas=1,
        )
        info = await self._client.jsm(timeout=REQUEST_TIMEOUT_SECS).add_consumer(STREAM, config)
        return info.name, info.num_pending or 0

    async def _fetch(self, consumer: str, count: int) -> list[Msg]:
        """Up to ``count`` messages of ``consumer``: one pull request (``no_wait``: the server
        sends what it has, then a status), its answers gathered by a plain subscription (the
        client's own ``fetch`` awaits each message in a task of its own, several times the cost
        on the delivery path)."""
        messages: list[Msg] = []
        done = asyncio.Event()

        async def take(msg: Msg) -> None:
            if msg.headers is not None and Header.STATUS in msg.headers:  # no more: 404 or 408
                done.set()
                return
            messages.append(msg)
            if len(messages) >= count:
                done.set()

        inbox = self._client.new_inbox()
        subscription = await self._client.subscribe(inbox, cb=take)
        try:
            request = orjson.dumps({"batch": count, "no_wait": True})
            await self._client.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{consumer}", request, reply=inbox
            )
            await asyncio.wait_for(done.wait(), REQUEST_TIMEOUT_SECS)
        finally:
            await subscription.unsubscribe()
        return messages

    async def _drop_reader(self, name: str) -> None:
        """Delete the consumer now (the server would after ``_CONSUMER_IDLE_SECS``)."""
        try:
            await self._client.jsm(timeout=REQUEST_TIMEOUT_SECS).delete_consumer(STREAM, name)
        except (TimeoutError, nats.errors.Error):
            return

    async def bounds(self) -> tuple[int, int]:
        with failures("reading the log's bounds", self._client):
            info = await self._client.jsm(timeout=REQUEST_TIMEOUT_SECS).stream_info(STREAM)
        state = info.state
        self._saw(state.last_seq)
        if not state.messages:
            return state.last_seq, state.last_seq
        return state.first_seq - 1, state.last_seq

    async def trim(self, older_than_secs: float) -> int:
        """Purge the records appended more than ``older_than_secs`` ago (JetStream drops them
        by itself too: the stream's ``max_age`` is the retention age)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_secs)
        manager = self._client.jsm(timeout=REQUEST_TIMEOUT_SECS)
        with failures("trimming the log", self._client):
            before = (await manager.stream_info(STREAM)).state
            if not before.messages:
                return 0
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=cutoff,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=_CONSUMER_IDLE_SECS,
                mem_storage=True,
                num_replicas=1,
            )
            young = await manager.add_consumer(STREAM, config)
            await self._drop_reader(young.name)
            started = young.delivered.stream_seq if young.delivered is not None else 0
            keep_from = started + 1  # the first record to keep
            if keep_from <= before.first_seq:
                return 0
            await manager.purge_stream(STREAM, seq=keep_from)
        return keep_from - before.first_seq

    async def aclose(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        await close(self._client)


class _Acks:
    """JetStream's answers to one append's publishes: done at the last acknowledgement, or at
    the first refusal."""

    def __init__(self, expected: int) -> None:
        self.done = asyncio.Event()
        self.last = 0  # the highest offset acknowledged
        self._expected = expected
        self._refusal: dict[str, Any] | None = None

    async def take(self, msg: Msg) -> None:
        if msg.headers is not None and Header.STATUS in msg.headers:  # 503: no stream answered
            self._refusal = {"code": int(msg.headers[Header.STATUS]), "description": "no stream"}
        else:
            answer = orjson.loads(msg.data)
            if "error" in answer:
                self._refusal = answer["error"]
            else:
                self.last = max(self.last, int(answer["seq"]))  # a duplicate's first offset
                self._expected -= 1
        if self._refusal is not None or self._expected == 0:
            self.done.set()

    def check(self) -> None:
        """Raise the refusal JetStream answered, if any."""
        if self._refusal is not None:
            raise nats.js.errors.APIError.from_error(self._refusal)


def _subject(entry: Entry) -> str:
    event_type = _NONE if entry.event_type is None else entry.event_type
    alert = _NONE if entry.alert is None else entry.alert
    return f"{_SUBJECT}.{entry.organisation}.{entry.kind.value}.{event_type}.{alert}"


def _stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream message's reply subject, read directly: the
    client's ``Msg.metadata`` also builds a timestamp and dataclasses, several times the cost
    on the delivery path. ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`` (9
    tokens) or, with domain and account, ``$JS.ACK.<domain>.<account>.<stream>.…`` (12)."""
    tokens = reply.split(".")
    return int(tokens[5] if len(tokens) == _V1_REPLY_TOKENS else tokens[Msg.Ack.StreamSeq])


def _row(msg: Msg, offset: int) -> Row:
    _, _, organisation, kind, event_type, alert = msg.subject.split(".")
    return Row(
        offset,
        Kind(kind),
        int(organisation),
        None if event_type == _NONE else int(event_type),
        None if alert == _NONE else int(alert),
        msg.data,
    )
