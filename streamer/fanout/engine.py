"""The fan-out engine: every stream's worker, and the operations the API calls on streams.

The engine's ``Stream`` objects are the truth while the service runs. The engine alone writes
a stream's definition and status (each change is stored before the call returns); the
stream's worker alone writes its position. Each running stream has one worker task, owned
here and awaited on stop, so a slow or failed stream holds back only itself. Appends wake only
the workers of the organisations they hold.

Other processes change streams too (replicas on JetStream; on SQLite nobody does, and
``follow`` does nothing): ``follow`` reads the store every ``SYNC_SECS`` and applies what
changed since it last looked (a stream created, redefined, paused, resumed, restarted or
deleted elsewhere), and delivers exactly the delivering streams whose lease this process
holds (``Leases``): a lease taken starts the stream's worker, a lease lost stops it. Every
operation and every sync hold one lock, so the engine never sees a half-done change of its
own. ``KvStore`` answers from memory and parses a definition again only once it changed.

A stored stream whose connector cannot be built (its destination was allowed by a setting the
service no longer has) goes to Error with the reason, at start as on resume or restart (which
then raise ``ValueError`` with it); every other stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter

import structlog

from connectors.base import Connector
from streamer.fanout.arrivals import Arrivals
from streamer.fanout.pages import Pages
from streamer.fanout.quiet import Quiet
from streamer.fanout.retry import RetryPolicy
from streamer.fanout.turns import Turns
from streamer.fanout.worker import StreamWorker
from streamer.log.base import (
    Entry,
    Leases,
    Log,
    LogError,
    Store,
    Stream,
    StreamError,
    StreamStatus,
)
from streamer.metrics import Metrics
from streamer.spec import Ref, StreamSpec

__all__ = [
    "HALT_GRACE_SECS",
    "SYNC_SECS",
    "ConnectorFactory",
    "Fanout",
    "StreamConflict",
    "StreamGone",
]

ConnectorFactory = Callable[[StreamSpec, int | None], Connector]
"""Builds the connector of a stream from its definition and id (``None``: not stored yet)."""
_log = structlog.get_logger("streamer.fanout")
_organisation = attrgetter("organisation")
SYNC_SECS = 0.5
_DELIVERING = (StreamStatus.RUNNING, StreamStatus.PENDING)
_RELEASE_DEADLINE_SECS = 1.0  # at shutdown; leases run out by themselves
HALT_GRACE_SECS = 5.0
"""How long a pause, change, restart or delete lets the stream's send in flight finish before
cancelling it (a cancelled send is sent again when the stream runs again)."""
_Seen = tuple[StreamSpec, StreamStatus, StreamError | None]


class _Alone:
    """The leases of the one service on an embedded log: every stream is its own."""

    async def hold(self, stream_ids: Collection[int]) -> set[int]:
        return set(stream_ids)

    async def release(self, stream_ids: Collection[int]) -> None:
        return None


class StreamConflict(Exception):
    """The operation does not fit the stream's status (restarting a paused stream)."""


class StreamGone(LookupError):
    """The stream is not (or no longer) there: deleted, here or through another replica."""


class Fanout:
    def __init__(
        self,
        log: Log,
        store: Store,
        connectors: ConnectorFactory,
        *,
        policy: RetryPolicy,
        metrics: Metrics,
        linger_secs: float,
        max_wait_secs: float,
        leases: Leases | None = None,
    ) -> None:
        """``linger_secs``: how long the log must be quiet before a partial batch goes;
        ``max_wait_secs``: the longest a partial batch waits while records keep arriving;
        ``leases``: which streams this process delivers (``None``: all of them)."""
        self._log = log
        self._store = store
        self._connectors = connectors
        self._policy = policy
        self._metrics = metrics
        self._max_wait = max_wait_secs
        self._quiet = Quiet(linger_secs)
        self._pages = Pages(log)
        self._arrivals = Arrivals()
        self._turns = Turns()
        self._streams: dict[int, Stream] = {}
        self._workers: dict[int, tuple[StreamWorker, asyncio.Task[None]]] = {}
        self._listening: defaultdict[int, set[StreamWorker]] = defaultdict(set)
        self._leases: Leases = _Alone() if leases is None else leases
        self._lock = asyncio.Lock()
        self._seen: dict[int, _Seen] = {}  # each stream as the store had it when last looked
        self._held: set[int] = set()
        self._operations: dict[int, asyncio.Lock] = {}  # one operation per stream at a time
        self._closing = False  # stopped: no worker starts any more

    async def start(self) -> None:
        """Load every stream and resume the ones that were delivering (no fail fast: a
        restart of the service is not a restart of the stream)."""
        await self.sync()

    async def follow(self) -> None:
        """Apply the store's changes every ``SYNC_SECS``, until cancelled. Alone on its store
        (no ``leases``: SQLite) the engine made every change itself: there is nothing to
        follow, and it returns at once."""
        if isinstance(self._leases, _Alone):
            return
        while True:
            await asyncio.sleep(SYNC_SECS)
            try:
                await self.sync()
            except LogError as exc:  # the store is out of reach: try again
                _log.warning("following the store failed", error=str(exc))

    async def sync(self) -> None:
        """Apply what changed in the store since the last look, and take or give up leases."""
        async with self._lock:
            stored = {stream.id: stream for stream in await self._store.streams()}
            for stream_id in [i for i in self._streams if i not in stored]:
                await self._forget_stream(stream_id)
            delivering = [i for i, stream in stored.items() if stream.status in _DELIVERING]
            await self._leases.release(self._held.difference(delivering))
            self._held = await self._leases.hold(delivering)
            for stream in stored.values():
                await self._follow(stream, held=stream.id in self._held)
            for stream_id in await self._store.queued_replays():  # asked for through any replica
                if stream_id in self._workers:
                    self._workers[stream_id][0].replay()

    async def _follow(self, stored: Stream, *, held: bool) -> None:
        """Bring the stream in line with the store: stop it if it is no longer this process's
        to deliver (or was redefined), start it if it is and has no worker. A stream an
        operation of this process is under way on is left to that operation."""
        operation = self._operations.get(stored.id)
        if operation is not None and operation.locked():
            return
        seen: _Seen = (stored.spec, stored.status, stored.error)
        changed = self._seen.get(stored.id) != seen
        self._seen[stored.id] = seen
        stream = self._streams.setdefault(stored.id, stored)
        respecified = changed and stream.spec != stored.spec  # unchanged: one spec, no compare
        if changed:
            stream.spec, stream.status, stream.error = seen
            self._metrics.status.labels(str(stream.id)).set(stream.status)
        delivering = held and stream.status in _DELIVERING
        if stream.id in self._workers and (not delivering or respecified):
            if not held and stream.status in _DELIVERING:
                _log.info("stream halted: its lease is not this replica's", stream=stream.id)
            await self._halt(stream.id)
        if stream.id not in self._workers:
            stream.position = stored.position  # another replica may have moved it
            if delivering:  # also one whose stop was stored in vain (NATS away): it goes on
                with contextlib.suppress(ValueError):  # in Error with the reason: go on
                    await self._launch(stream, fail_fast=stream.status is StreamStatus.PENDING)

    def receiving(self) -> contextlib.AbstractContextManager[None]:
        """Around an ingest request: while records are on their way in, partial batches
        keep waiting for more."""
        return self._quiet.receiving()

    def notify(self, entries: Sequence[Entry]) -> None:
        """``entries`` were appended: wake the workers waiting for them."""
        self._quiet.appended()
        self._arrivals.appended(list(map(_organisation, entries)))

    def arrived(self, counts: Mapping[int, int] | None) -> None:
        """``counts[organisation]`` records were appended by another replica; ``None``:
        records of organisations unknown, for every worker to look for."""
        self._quiet.appended()
        self._arrivals.appended_counts(
            dict.fromkeys(self._listening, 1) if counts is None else counts
        )

    def listens(self, organisation: int) -> bool:
        """Whether a delivering stream of this process reads ``organisation``'s records."""
        return organisation in self._listening

    def troubles(self) -> dict[int, str]:
        """The streams whose delivery waits out the service's own error, and that error."""
        return {
            stream_id: worker.trouble
            for stream_id, (worker, _) in self._workers.items()
            if worker.trouble is not None
        }

    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    def get(self, stream_id: int) -> Stream | None:
        return self._streams.get(stream_id)

    async def create(self, organisation: int, spec: StreamSpec) -> Stream:
        """Store a new stream and start it from now, or from the oldest retained record.

        The stored spec names its organisation, so a connector that needs it (the external id
        of an AWS role) finds it there."""
        spec = spec.model_copy(update={"organisation": Ref(id=organisation)})
        await self._check(spec)
        async with self._lock:
            oldest, last = await self._log.bounds()
            offset = oldest if spec.stream_historic_data else last
            stream = await self._store.create_stream(organisation, spec, offset)
            self._streams[stream.id] = stream
            self._seen[stream.id] = (spec, stream.status, None)
            await self._launch(stream, fail_fast=True)
        _log.info(
            "stream created",
            stream=stream.id,
            organisation=organisation,
            destination=spec.destination.connection_type,
            format_version=spec.format_version,
        )
        return stream

    async def update(self, stream_id: int, change: Callable[[StreamSpec], StreamSpec]) -> None:
        """Replace the stream's definition by ``change`` of it (applied once the operations
        on the stream before this one are done, so none is lost); a delivering stream picks
        it up at once. ``ValueError`` (nothing changed) if its connector cannot be built."""
        async with self._operation(stream_id) as stream:
            spec = change(stream.spec)
            await self._check(spec)
            async with self._quiesced(stream_id) as running:
                relaunch = running and stream.status in _DELIVERING  # not if it failed meanwhile
                try:
                    await self._store.define_stream(stream_id, spec)
                except BaseException:  # refused: the stream goes on as it was
                    if relaunch:
                        with contextlib.suppress(ValueError, LogError):
                            await self._relaunch(stream)
                    raise
                stream.spec = spec
                self._saw(stream)
                if relaunch:
                    await self._relaunch(stream)
        _log.info("stream changed", stream=stream_id)

    async def pause(self, stream_id: int) -> None:
        async with self._operation(stream_id) as stream, self._quiesced(stream_id):
            await self._set_status(stream, StreamStatus.PAUSED)
        _log.info("stream paused", stream=stream_id)

    async def resume(self, stream_id: int) -> None:
        """Deliver a paused stream again; ``ValueError`` if its connector cannot be built."""
        async with self._operation(stream_id) as stream, self._lock:
            if stream.status is not StreamStatus.PAUSED or stream_id in self._workers:
                return
            await self._launch(stream, fail_fast=False)
        _log.info("stream resumed", stream=stream_id)

    async def restart(self, stream_id: int) -> None:
        """Take the stream out of Error (or re-initialise it) from its last acknowledged record;
        ``ValueError`` if its connector cannot be built."""
        async with self._operation(stream_id) as stream:
            if stream.status is StreamStatus.PAUSED:
                raise StreamConflict("the stream is paused: resume it instead")
            async with self._quiesced(stream_id):
                await self._launch(stream, fail_fast=True)
        _log.info("stream restarted", stream=stream_id)

    async def replay_dead_letters(self, stream_id: int) -> int:
        """Queue the stream's dead letters to be sent again; a delivering stream sends them
        before its next records, a paused or failed one once it runs again."""
        requeued = await self._store.requeue_dead_letters(stream_id)
        entry = self._workers.get(stream_id)
        if entry is not None and requeued:
            entry[0].replay()
        return requeued

    async def delete(self, stream_id: int) -> None:
        async with self._operation(stream_id), self._quiesced(stream_id):
            await self._forget_stream(stream_id)
            await self._store.delete_stream(stream_id)
        _log.info("stream deleted", stream=stream_id)

    async def _forget_stream(self, stream_id: int) -> None:
        await self._halt(stream_id)
        del self._streams[stream_id]
        self._operations.pop(stream_id, None)  # one still waiting for it finds the stream gone
        self._seen.pop(stream_id, None)
        self._metrics.forget(str(stream_id))

    async def stop(self, deadline_secs: float) -> None:
        """Let in-flight sends finish within ``deadline_secs``, then cancel what is left (an
        operation under way meanwhile starts no worker)."""
        self._closing = True
        for worker, _ in self._workers.values():
            worker.stop()
        tasks = [task for _, task in self._workers.values()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=deadline_secs)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # unreleased leases run out by themselves
            await asyncio.wait_for(self._leases.release(self._held), _RELEASE_DEADLINE_SECS)
        self._held = set()

    async def _check(self, spec: StreamSpec) -> None:
        """Refuse (``ValueError``) a spec whose connector cannot be built, before storing it."""
        await self._connectors(spec, None).aclose()

    async def _relaunch(self, stream: Stream) -> None:
        """Start the stream's worker again as it was: Pending (fail fast) until its first
        batch is acknowledged, or Running."""
        await self._launch(stream, fail_fast=stream.status is StreamStatus.PENDING)

    async def _launch(self, stream: Stream, *, fail_fast: bool) -> None:
        """Start the stream's worker; if its connector cannot be built, put the stream in
        Error with the reason and raise that ``ValueError``. Once stopped, start none."""
        if self._closing:
            return
        try:
            connector = self._connectors(stream.spec, stream.id)
        except ValueError as exc:
            reason = f"the destination cannot be built: {exc}"
            _log.warning("stream failed", stream=stream.id, error=reason)
            failure = StreamError(message=reason, http_status=None, at=_now())
            await self._set_status(stream, StreamStatus.ERROR, failure)
            raise ValueError(reason) from None
        # A new or restarted stream is Pending until its first batch is acknowledged.
        status = StreamStatus.PENDING if fail_fast else StreamStatus.RUNNING
        if (stream.status, stream.error) == (status, None):  # stored so: a lease taken again
            self._metrics.status.labels(str(stream.id)).set(status)
        else:
            await self._set_status(stream, status)
        if stream.id not in await self._leases.hold([stream.id]):
            await connector.aclose()  # the replica holding the lease delivers it
            return
        self._held.add(stream.id)
        worker = StreamWorker(
            stream,
            connector,
            log=self._log,
            store=self._store,
            pages=self._pages,
            arrivals=self._arrivals,
            turns=self._turns,
            quiet=self._quiet if connector.linger_secs is None else None,
            policy=self._policy,
            metrics=self._metrics,
            max_wait_secs=self._max_wait
            if connector.linger_secs is None
            else connector.linger_secs,
            fail_fast=fail_fast,
            initialised=partial(self._running, stream) if fail_fast else None,
        )
        self._listening[stream.organisation].add(worker)
        task = asyncio.create_task(self._run(worker), name=f"stream-{stream.id}")
        self._workers[stream.id] = (worker, task)

    async def _run(self, worker: StreamWorker) -> None:
        stream = worker.stream
        try:
            error = await worker.run()
            if error is not None:
                failure = StreamError(
                    message=error.message, http_status=error.http_status, at=_now()
                )
                await self._fail(stream, failure)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one stream, not the service
            _log.exception("stream worker crashed", stream=stream.id)
            failure = StreamError(message=f"internal error: {exc}", http_status=None, at=_now())
            await self._set_status(stream, StreamStatus.ERROR, failure)
        finally:
            self._forget(worker)
            if self._workers.get(stream.id, (None,))[0] is worker:
                del self._workers[stream.id]
                await worker.connector.aclose()

    @contextlib.asynccontextmanager
    async def _operation(self, stream_id: int) -> AsyncIterator[Stream]:
        """Wait for the operations on the stream before this one (their grace included); yield
        the stream, or raise ``StreamGone`` if it is not there."""
        self._existing(stream_id)
        async with self._operations.setdefault(stream_id, asyncio.Lock()):
            yield self._existing(stream_id)

    @contextlib.asynccontextmanager
    async def _quiesced(self, stream_id: int) -> AsyncIterator[bool]:
        """Hold the lock with the stream's worker ended; yield whether it had one. First, out
        of the lock (other operations and the leases' renewal go on), its send in flight may
        finish for up to ``HALT_GRACE_SECS``: the destination's answer is acknowledged, so that
        batch is not sent again. Only within ``_operation``: ``sync`` then leaves the stream
        alone, and a caller cancelled meanwhile leaves the worker to end by itself, still the
        engine's."""
        entry = self._workers.get(stream_id)
        if entry is not None:
            worker, task = entry
            worker.stop()
            await asyncio.wait([task], timeout=HALT_GRACE_SECS)
        async with self._lock:
            self._existing(stream_id)  # deleted through another replica meanwhile?
            await self._halt(stream_id)
            yield entry is not None

    def _existing(self, stream_id: int) -> Stream:
        """The stream, or ``StreamGone``."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamGone(f"no stream {stream_id}")
        return stream

    async def _halt(self, stream_id: int) -> None:
        """Cancel the stream's worker at once (a send in flight is sent again later)."""
        entry = self._workers.pop(stream_id, None)
        if entry is None:
            return
        worker, task = entry
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._forget(worker)
        await worker.connector.aclose()

    def _forget(self, worker: StreamWorker) -> None:
        listening = self._listening.get(worker.stream.organisation)
        if listening is not None:
            listening.discard(worker)
            if not listening:
                del self._listening[worker.stream.organisation]

    async def _fail(self, stream: Stream, failure: StreamError) -> None:
        """Put the stream in Error; if the store cannot take it (a full disk), the stream is in
        Error all the same while the service runs (after a restart it tries its destination
        again)."""
        try:
            await self._set_status(stream, StreamStatus.ERROR, failure)
        except LogError as exc:
            _log.error("storing a stream's Error failed", stream=stream.id, error=str(exc))
            stream.status, stream.error = StreamStatus.ERROR, failure
            self._metrics.status.labels(str(stream.id)).set(StreamStatus.ERROR)

    def _running(self, stream: Stream) -> Awaitable[None]:
        """Show a new or restarted stream Running at once (its destination acknowledged its
        first batch); the returned write stores that."""
        stream.status, stream.error = StreamStatus.RUNNING, None
        self._metrics.status.labels(str(stream.id)).set(StreamStatus.RUNNING)
        return self._store.set_status(stream.id, StreamStatus.RUNNING, None)

    async def _set_status(
        self, stream: Stream, status: StreamStatus, error: StreamError | None = None
    ) -> None:
        await self._store.set_status(stream.id, status, error)
        stream.status, stream.error = status, error
        self._saw(stream)
        self._metrics.status.labels(str(stream.id)).set(status)

    def _saw(self, stream: Stream) -> None:
        """This process changed the stream: no change for ``sync`` to apply."""
        self._seen[stream.id] = (stream.spec, stream.status, stream.error)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
