"""The fan-out engine: every stream's worker, and the operations the API calls on streams.

The engine's ``StreamState`` objects are the truth while the service runs; each change is
written to the store before the call returns. Each running stream has one worker task, owned
here and awaited on stop, so a slow or failed stream holds back only itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from connectors.base import Connector
from streamer.fanout.pages import Pages
from streamer.fanout.retry import RetryPolicy
from streamer.fanout.worker import ERROR, PAUSED, PENDING, RUNNING, StreamWorker
from streamer.log.base import Log, StreamState
from streamer.metrics import Metrics

__all__ = ["ConnectorFactory", "Fanout", "StreamConflict"]

ConnectorFactory = Callable[[dict[str, Any]], Connector]
_log = structlog.get_logger("streamer.fanout")


class StreamConflict(Exception):
    """The operation does not fit the stream's status (restarting a paused stream)."""


class Fanout:
    def __init__(
        self,
        log: Log,
        connectors: ConnectorFactory,
        *,
        policy: RetryPolicy,
        metrics: Metrics,
        linger_secs: float,
    ) -> None:
        self._log = log
        self._connectors = connectors
        self._policy = policy
        self._metrics = metrics
        self._linger = linger_secs
        self._pages = Pages(log)
        self._states: dict[int, StreamState] = {}
        self._workers: dict[int, tuple[StreamWorker, asyncio.Task[None]]] = {}
        self._appended = asyncio.Event()

    async def start(self) -> None:
        """Load every stream and resume the ones that were delivering (no fail fast: a
        restart of the service is not a restart of the stream)."""
        for state in await self._log.streams():
            self._states[state.id] = state
            self._metrics.status.labels(str(state.id)).set(state.status)
            if state.status in (RUNNING, PENDING):
                self._launch(state, fail_fast=state.status == PENDING)

    def notify(self) -> None:
        """Wake every worker waiting for records: call after each append."""
        event, self._appended = self._appended, asyncio.Event()
        event.set()

    def streams(self) -> list[StreamState]:
        return list(self._states.values())

    def get(self, stream_id: int) -> StreamState | None:
        return self._states.get(stream_id)

    async def create(self, organisation: int, spec: dict[str, Any]) -> StreamState:
        """Store a new stream and start it from now, or from the oldest retained record.

        The stored spec names its organisation, so a connector that needs it (the external id
        of an AWS role) finds it there."""
        spec = {**spec, "organisation": {"id": organisation}}
        await self._check(spec)
        oldest, last = await self._log.bounds()
        cursor = oldest if spec.get("stream_historic_data") else last
        state = await self._log.create_stream(organisation, spec, cursor)
        self._states[state.id] = state
        self._launch(state, fail_fast=True)
        return state

    async def update(self, stream_id: int, spec: dict[str, Any]) -> None:
        """Replace the stream's definition; a delivering stream picks it up at once."""
        await self._check(spec)
        state = self._states[stream_id]
        await self._log.save_stream(replace(state, spec=spec))  # stored first: a refused
        running = stream_id in self._workers  # write leaves the stream as it was
        await self._halt(stream_id)
        state.spec = spec
        if running:
            self._launch(state, fail_fast=False)

    async def pause(self, stream_id: int) -> None:
        state = self._states[stream_id]
        await self._halt(stream_id)
        state.status = PAUSED
        await self._save(state)

    async def resume(self, stream_id: int) -> None:
        state = self._states[stream_id]
        if state.status == PAUSED and stream_id not in self._workers:
            self._launch(state, fail_fast=False)

    async def restart(self, stream_id: int) -> None:
        """Take the stream out of Error (or re-initialise it) from its last acknowledged record."""
        state = self._states[stream_id]
        if state.status == PAUSED:
            raise StreamConflict("the stream is paused: resume it instead")
        await self._halt(stream_id)
        state.error = None
        self._launch(state, fail_fast=True)

    async def replay_dead_letters(self, stream_id: int) -> int:
        """Queue the stream's dead letters to be sent again; a delivering stream sends them
        before its next records, a paused or failed one once it runs again."""
        requeued = await self._log.requeue_dead_letters(stream_id)
        entry = self._workers.get(stream_id)
        if entry is not None and requeued:
            entry[0].replaying = True
            self.notify()
        return requeued

    async def delete(self, stream_id: int) -> None:
        await self._halt(stream_id)
        del self._states[stream_id]
        await self._log.delete_stream(stream_id)
        self._metrics.forget(str(stream_id))

    async def stop(self, deadline_secs: float) -> None:
        """Let in-flight sends finish within ``deadline_secs``, then cancel what is left."""
        for worker, _ in self._workers.values():
            worker.stopping = True
        self.notify()
        tasks = [task for _, task in self._workers.values()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=deadline_secs)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _check(self, spec: dict[str, Any]) -> None:
        """Refuse (``ValueError``) a spec whose connector cannot be built, before storing it."""
        await self._connectors(spec).aclose()

    def _launch(self, state: StreamState, *, fail_fast: bool) -> None:
        spec = state.spec
        connector = self._connectors({**spec, "id": state.id})
        worker = StreamWorker(
            state,
            connector,
            log=self._log,
            pages=self._pages,
            appended=lambda: self._appended,
            policy=self._policy,
            metrics=self._metrics,
            size=connector.max_batch,
            linger_secs=self._linger if connector.linger_secs is None else connector.linger_secs,
            fail_fast=fail_fast,
        )
        task = asyncio.create_task(self._run(worker), name=f"stream-{state.id}")
        self._workers[state.id] = (worker, task)

    async def _run(self, worker: StreamWorker) -> None:
        stream_id = worker.state.id
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one stream, not the service
            _log.exception("stream worker crashed", stream=stream_id)
            worker.state.status = ERROR
            worker.state.error = {"message": f"internal error: {exc}", "http_status": None}
            await self._save(worker.state)
        finally:
            if self._workers.get(stream_id, (None,))[0] is worker:
                del self._workers[stream_id]
                await worker.connector.aclose()

    async def _halt(self, stream_id: int) -> None:
        entry = self._workers.pop(stream_id, None)
        if entry is None:
            return
        worker, task = entry
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.connector.aclose()

    async def _save(self, state: StreamState) -> None:
        self._metrics.status.labels(str(state.id)).set(state.status)
        await self._log.save_stream(state)
