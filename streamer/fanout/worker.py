"""One stream's delivery loop and its state machine.

    Pending ──start──► Running ──fatal, retries exhausted, fail fast──► Error
                         │  ▲                                             │
                    pause│  │resume                                restart│
                         ▼  │                                             ▼
                        Paused                                         Running

The loop reads from the stream's position, keeps its organisation's records of its kinds that
pass its filters, batches up to the stream's ``size`` (waiting ``linger`` for a batch to fill
when the log is quiet), sends, and moves the position only once the destination acknowledged.
Retryable failures are retried with backoff until the retry window closes; then, or on a fatal
failure, or on any failure of the first send after a create or restart (fail fast), the stream
goes to Error and stops. Only this stream stops; its records stay in the log.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import structlog

from connectors.base import Batch, Connector, DeliveryError, RetryableError
from streamer import filters
from streamer.fanout.pages import Pages, render_payload
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import Log, Row, StreamState
from streamer.metrics import Metrics

__all__ = ["ERROR", "KINDS_OF_TYPE", "PAUSED", "PENDING", "RUNNING", "StreamWorker", "matcher"]

RUNNING, PAUSED, ERROR, PENDING = 1, 2, 3, 4
KINDS_OF_TYPE = {1: (1,), 2: (0,), 3: (0, 1)}  # data_stream_type id → log kinds (0 event, 1 usage)
KIND_NAMES = ("event", "usage")
_log = structlog.get_logger("streamer.fanout")


def matcher(state: StreamState) -> Callable[[Row], bool]:
    """Which log rows belong to the stream: its organisation, its kinds, its event filters."""
    spec = state.spec
    kinds = KINDS_OF_TYPE[spec["data_stream_type"]["id"]]
    organisation = state.organisation
    accepts = filters.matcher(spec.get("filters") or ())

    def matches(row: Row) -> bool:
        if row.organisation != organisation or row.kind not in kinds:
            return False
        return row.kind == 1 or accepts(row.event_type, row.alert)

    return matches


@dataclass(slots=True)
class _Collected:
    batch: Batch
    rows: list[Row]  # the canonical records behind the payloads, for dead letters
    upto: int | None  # the stream's position once acknowledged; None for a dead-letter replay
    letters: list[int] | None = None  # the dead letters this batch sends again


class _Failed(Exception):
    def __init__(self, error: DeliveryError) -> None:
        self.error = error


class _Stopped(Exception):
    """The service is shutting down while a batch waits for its next try: not a failure."""


class StreamWorker:
    """Delivers one stream; ``run`` returns when the stream goes to Error or is stopped."""

    def __init__(
        self,
        state: StreamState,
        connector: Connector,
        *,
        log: Log,
        pages: Pages,
        appended: Callable[[], asyncio.Event],
        policy: RetryPolicy,
        metrics: Metrics,
        size: int,
        linger_secs: float,
        fail_fast: bool,
    ) -> None:
        self.state = state
        self.connector = connector
        self._log = log
        self._pages = pages
        self._appended = appended
        self._policy = policy
        self._metrics = metrics
        self._size = size
        self._linger = linger_secs
        self._fail_fast = fail_fast
        self._matches = matcher(state)
        self._label = str(state.id)
        self.stopping = False
        self.replaying = True  # look for dead letters queued for replay first
        self._saving: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Deliver until stopped (``stopping`` set, or cancelled) or until the stream fails.

        A new or restarted stream (fail fast) is Pending until its first records are delivered,
        then Running."""
        self.state.status = PENDING if self._fail_fast else RUNNING
        self.state.error = None
        await self._save()
        try:
            while not self.stopping:
                collected = await self._collect()
                if collected is not None:
                    await self._deliver(collected)
        except _Failed as failed:
            await self._fail(failed.error)
        except _Stopped:
            pass
        finally:
            if self._saving is not None:
                await self._saving

    async def _collect(self) -> _Collected | None:
        if self.replaying:
            replay = await self._replay()
            if replay is not None:
                return replay
            self.replaying = False
        payloads: list[bytes] = []
        picked: list[Row] = []
        position = self.state.cursor
        inflight = self.state.inflight  # a stable batch cut before a crash: cut it there again
        stop_at = inflight if inflight is not None and inflight > position else None
        linger_until: float | None = None
        rendering = self.connector.rendering
        while len(payloads) < self._size and (stop_at is None or position < stop_at):
            appended = self._appended()
            if position >= self._log.last_offset:
                if not payloads:
                    if position > self.state.cursor:  # only other streams' records: skip them
                        self.state.cursor = position
                        await self._save()
                    self._report_pending()
                    await appended.wait()
                    if self.stopping or self.replaying:  # dead letters queued meanwhile
                        return None
                    continue
                now = time.monotonic()
                linger_until = linger_until or now + self._linger
                if now >= linger_until:
                    break
                try:
                    await asyncio.wait_for(appended.wait(), linger_until - now)
                except TimeoutError:
                    break
                continue
            page = await self._pages.page_after(position)
            rows = page.rows
            start = bisect.bisect_right(rows, position, key=_offset)
            for index in range(start, len(rows)):
                row = rows[index]
                if stop_at is not None and row.offset > stop_at:
                    position = stop_at
                    break
                position = row.offset
                if self._matches(row):
                    payloads.append(page.payload(index, rendering))
                    picked.append(row)
                    if len(payloads) == self._size:
                        break
            else:
                end = page.end if stop_at is None else min(page.end, stop_at)
                position = max(position, end)
        if not picked:  # the batch cut before the crash held only others' records
            self.state.cursor, self.state.inflight = position, None
            await self._save()
            return None
        key = f"{self.state.id}-{picked[0].offset}-{picked[-1].offset}"
        return _Collected(_batch(key, payloads, picked), picked, position)

    async def _replay(self) -> _Collected | None:
        """The next dead letters queued for replay, as one batch."""
        letters = await self._log.dead_letters(self.state.id, queued_only=True, limit=self._size)
        if not letters:
            return None
        rendering = self.connector.rendering
        rows = [
            Row(dl.offset, dl.kind, self.state.organisation, None, None, dl.body) for dl in letters
        ]
        payloads = [render_payload(row.kind, row.body, rendering) for row in rows]
        key = f"{self.state.id}-dead-{letters[0].id}-{letters[-1].id}"
        return _Collected(_batch(key, payloads, rows), rows, None, [dl.id for dl in letters])

    async def _deliver(self, collected: _Collected) -> None:
        if self.connector.stable_batches and collected.upto is not None:
            self.state.inflight = collected.upto
            await self._save()
        batch = collected.batch
        rows = collected.rows
        rejected: list[tuple[Row, str]] = []
        started = time.monotonic()
        failing_since: float | None = None
        attempt = 0
        while True:
            try:
                result = await self.connector.send(batch)
            except RetryableError as error:
                self._metrics.failed.labels(self._label).inc(len(batch.payloads))
                failing_since = failing_since or time.monotonic()
                await self._back_off(error, failing_since, attempt)
                self._metrics.retried.labels(self._label).inc(len(batch.payloads))
                attempt += 1
                continue
            except DeliveryError as error:
                self._metrics.failed.labels(self._label).inc(len(batch.payloads))
                raise _Failed(error) from None
            rejected.extend((rows[index], reason) for index, reason in result.rejected)
            if len(result.retry) < len(batch.payloads):
                self._fail_fast = False  # something went through: not a failure to deliver at all
            if not result.retry:
                break
            retry = RetryableError(f"{len(result.retry)} records were not accepted")
            self._metrics.failed.labels(self._label).inc(len(result.retry))
            failing_since = failing_since or time.monotonic()
            await self._back_off(retry, failing_since, attempt)
            rows = [rows[i] for i in result.retry]
            batch = _batch(batch.key, [batch.payloads[i] for i in result.retry], rows)
            self._metrics.retried.labels(self._label).inc(len(batch.payloads))
            attempt += 1
        self._fail_fast = False
        if rejected:
            await self._dead_letter(rejected)
        if collected.letters is not None:  # sent again: gone, unless refused once more
            refused = {row.offset for row, _ in rejected}
            await self._log.drop_dead_letters(
                [
                    i
                    for i, row in zip(collected.letters, collected.rows, strict=True)
                    if row.offset not in refused
                ]
            )
        delivered = len(collected.batch.payloads) - len(rejected)
        state = self.state
        if collected.upto is not None:
            state.cursor = collected.upto
            state.inflight = None
        state.delivered += delivered
        state.last_delivery_at = _now()
        state.last_result_code = result.http_status
        self._note_last_ids(collected.rows, {row.offset for row, _ in rejected})
        if state.status == PENDING:
            state.status = RUNNING
            self._metrics.status.labels(self._label).set(RUNNING)
        self._metrics.delivered.labels(self._label).inc(delivered)
        self._metrics.batch_seconds.labels(self._label).observe(time.monotonic() - started)
        self._report_pending()
        await self._save_behind()

    def _note_last_ids(self, rows: list[Row], refused: set[int]) -> None:
        """The ids of the batch's last delivered event and usage record, for the legacy API."""
        last: dict[int, Row] = {}
        for row in rows:
            if row.offset not in refused:
                last[row.kind] = row
        if 0 in last:
            self.state.last_event_id = _record_id(last[0])
        if 1 in last:
            self.state.last_usage_id = _record_id(last[1])

    async def _dead_letter(self, rejected: list[tuple[Row, str]]) -> None:
        """Keep what the destination refused for good, with its reason, for a later replay."""
        _log.warning(
            "records refused by the destination, kept as dead letters",
            stream=self.state.id,
            count=len(rejected),
            first_reason=rejected[0][1],
        )
        await self._log.add_dead_letters(
            self.state.id, [(row.offset, row.kind, row.body, reason) for row, reason in rejected]
        )
        self._metrics.dead_lettered.labels(self._label).inc(len(rejected))

    async def _back_off(self, error: RetryableError, failing_since: float, attempt: int) -> None:
        """Sleep before the next try, or raise ``_Failed`` when no try is left."""
        if self.stopping:
            raise _Stopped
        remaining = self._policy.window_secs - (time.monotonic() - failing_since)
        if self._fail_fast or remaining <= 0 or (error.retry_after or 0) > remaining:
            raise _Failed(error)  # a destination's Retry-After is never cut short
        delay = self._policy.delay(attempt, error.retry_after)
        _log.info(
            "send failed, retrying",
            stream=self.state.id,
            error=error.message,
            http_status=error.http_status,
            retry_in_secs=round(min(delay, remaining), 3),
        )
        await asyncio.sleep(min(delay, remaining))

    async def _fail(self, error: DeliveryError) -> None:
        state = self.state
        state.status = ERROR
        state.error = {"message": error.message, "http_status": error.http_status, "at": _now()}
        if error.http_status is not None:
            state.last_result_code = error.http_status
        _log.warning(
            "stream failed", stream=state.id, error=error.message, http_status=error.http_status
        )
        await self._save()

    def _report_pending(self) -> None:
        self._metrics.pending.labels(self._label).set(self._log.last_offset - self.state.cursor)

    async def _save(self) -> None:
        if self._saving is not None:
            await self._saving
            self._saving = None
        self._metrics.status.labels(self._label).set(self.state.status)
        await self._log.save_stream(self.state)

    async def _save_behind(self) -> None:
        """Write the new position while the next batch is read and sent: at most one write
        in flight, so after a crash at most the batch before it is sent again."""
        if self._saving is not None:
            await self._saving
        self._saving = asyncio.ensure_future(self._log.save_stream(self.state))


def _batch(key: str, payloads: list[bytes], rows: list[Row]) -> Batch:
    return Batch(key, payloads, [KIND_NAMES[row.kind] for row in rows], [r.offset for r in rows])


def _record_id(row: Row) -> int | None:
    found = orjson.loads(row.body).get("id")
    return found if isinstance(found, int) else None


def _offset(row: Row) -> int:
    return row.offset


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
