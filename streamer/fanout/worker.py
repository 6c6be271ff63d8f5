"""One stream's delivery loop: next batch → send until done or failed → acknowledge.

The next batch is either the dead letters queued for replay (``Replay``) or the stream's next
records from its lane of the log (``LogBatch``): its organisation's records of its kinds that
pass its filters, up to its ``size``. When that many wait, the batch goes at once. Otherwise it
waits for more while records keep arriving, and goes once the log is quiet (no appends for
``linger``) or once it has waited ``max_wait``; a destination with a linger of its own (S3's
rotation) waits just that long. A waiting batch is read again only when enough records of
its organisation may have arrived to fill it. Workers woken together (the log went quiet) go
on a few per turn of the event loop (``Turns``): the first requests leave while the rest of
the batches are read.

A send is retried with backoff while the destination's failures are retryable and the retry
window is open; records refused for good become dead letters, and so does a record that cannot
be rendered as the stream asks (the rest of its batch goes). The stream's position moves
only once the destination acknowledged, and only this worker writes it
(``Store.commit_position``). A fatal failure, a closed retry window, or any failure of the
first send after a create or restart (fail fast) ends ``run`` with that error; the engine puts
the stream in Error. Only this stream stops; its records stay in the log. A destination that
disappears after the stream delivered (``DestinationMissing``) is retried for the window first.

Failures that are the service's own (its log or store: a full disk, a database error; a bug)
are not the destination's and never end ``run``: the worker reports them (``trouble``, the
``streamer_delivery_service_errors`` metric, the log), backs off without limit, stores its
position again, and goes on where it was.

``stop`` lets the send in flight finish and acknowledges it; no other send starts, and a
back-off ends at once (the engine cancels what is still running after its grace).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from operator import attrgetter

import orjson
import structlog

from connectors.base import (
    Batch,
    Connector,
    DeliveryError,
    DestinationMissing,
    RetryableError,
    SendResult,
)
from schemas import Kind
from streamer.fanout.arrivals import Arrivals
from streamer.fanout.pages import Lane, Page, Pages, Unrenderable, render_payload
from streamer.fanout.quiet import Quiet
from streamer.fanout.retry import RetryPolicy
from streamer.fanout.turns import Turns
from streamer.log.base import Log, LogError, Position, Row, Store, Stream
from streamer.metrics import Metrics
from streamer.spec import StreamSpec

__all__ = ["LogBatch", "Replay", "StreamWorker", "selector"]

_log = structlog.get_logger("streamer.fanout")
Selector = Callable[[Row], bool] | None


def selector(spec: StreamSpec) -> Selector:
    """Which rows of its lane the stream wants; ``None``: every one (no filters)."""
    accepts = spec.event_matcher()
    if accepts is None:
        return None

    def selected(row: Row) -> bool:
        # usage: filters apply to events only
        return row.event_type is None or accepts(row.event_type, row.alert)

    return selected


Refusal = tuple[Row, str]
"""A record that is not delivered, and why: it becomes a dead letter."""


@dataclass(slots=True)
class LogBatch:
    """The stream's next records (``rows`` sent, ``unrendered`` kept as dead letters);
    acknowledged, the position moves to ``upto``."""

    batch: Batch
    rows: list[Row]
    unrendered: list[Refusal]
    upto: int


@dataclass(slots=True)
class Replay:
    """Dead letters sent again (those that still cannot be rendered stay); acknowledged, the
    ``letters`` sent are dropped."""

    batch: Batch
    rows: list[Row]
    unrendered: list[Refusal]
    letters: list[int]


class _Cut:
    """A log batch being cut: the stream's records after a position, up to ``size``, never
    past ``stop_at`` (the end of a stable batch cut before a crash)."""

    def __init__(self, position: Position, size: int) -> None:
        inflight = position.inflight
        self.position = position.offset
        self.stop_at = inflight if inflight is not None and inflight > position.offset else None
        self.size = size
        self.rows: list[Row] = []
        self.payloads: list[bytes] = []
        self.unrendered: list[Refusal] = []

    @property
    def taken(self) -> int:
        return len(self.rows) + len(self.unrendered)

    @property
    def done(self) -> bool:
        return self.taken >= self.size or (
            self.stop_at is not None and self.position >= self.stop_at
        )

    def take(self, page: Page, selected: Selector, connector: Connector) -> None:
        """Take what the stream wants of ``page`` after the position; move the position."""
        rows = page.rows
        start = bisect.bisect_right(rows, self.position, key=_offset)
        limit = page.end if self.stop_at is None else min(page.end, self.stop_at)
        stop = bisect.bisect_right(rows, limit, key=_offset)
        wanted = self.size - self.taken
        picked: Sequence[int] = (
            range(start, min(stop, start + wanted))
            if selected is None
            else list(islice((i for i in range(start, stop) if selected(rows[i])), wanted))
        )
        payloads, failed = page.render(picked, connector.rendering)
        kept = picked
        if failed:
            self.unrendered += [(rows[i], failed[i]) for i in picked if i in failed]
            kept = [i for i in picked if i not in failed]
        self.rows += map(rows.__getitem__, kept)
        self.payloads += payloads
        full = len(picked) == wanted
        self.position = rows[picked[-1]].offset if full else max(self.position, limit)


class _Failed(Exception):
    def __init__(self, error: DeliveryError) -> None:
        self.error = error


class _Stopped(Exception):
    """The service is shutting down while a batch waits for its next try: not a failure."""


_OURS = (_Failed, _Stopped)


@dataclass(slots=True)
class _Tries:
    """How a send has fared so far."""

    since: float | None = None  # monotonic time of the first failure
    count: int = 0


class StreamWorker:
    """Delivers one stream until it is stopped or fails."""

    def __init__(
        self,
        stream: Stream,
        connector: Connector,
        *,
        log: Log,
        store: Store,
        pages: Pages,
        arrivals: Arrivals,
        turns: Turns,
        quiet: Quiet | None,
        policy: RetryPolicy,
        metrics: Metrics,
        max_wait_secs: float,
        fail_fast: bool,
        initialised: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``quiet``: send a partial batch once the log is quiet (``None``: only after
        ``max_wait_secs``). ``initialised``: called once the first batch is acknowledged, before
        the position shows it (the engine shows a new or restarted stream as Running at once,
        no longer Pending; the awaitable it returns stores that)."""
        self.stream = stream
        self.connector = connector
        self._log = log
        self._store = store
        self._pages = pages
        self._arrivals = arrivals
        self._turns = turns
        self._policy = policy
        self._metrics = metrics
        self._size = connector.max_batch
        self._quiet = quiet
        self._max_wait = max_wait_secs
        self._fail_fast = fail_fast
        self._initialised = initialised
        self._lane = Lane(stream.organisation, stream.spec.kinds)
        self._selected = selector(stream.spec)
        self._label = str(stream.id)
        # the series every batch moves, looked up once
        self._delivered = metrics.delivered.labels(self._label)
        self._pending = metrics.pending.labels(self._label)
        self._batch_seconds = metrics.batch_seconds.labels(self._label)
        self._wake = asyncio.Event()
        self._read_at = 0  # how many records of the organisation were appended at the last read
        self._unread = True  # records may wait that no read has seen (at start, after a full cut)
        self._stopping = False
        self._stopped = asyncio.Event()
        self._replaying = True  # look for dead letters queued for replay first
        self._committing: asyncio.Future[None] | None = None
        self.trouble: str | None = None
        """The service's own failure the worker is waiting out (``None``: none)."""

    @property
    def stopping(self) -> bool:
        """``stop`` was called."""
        return self._stopping

    def stop(self) -> None:
        """Finish the send in flight (no other starts), then return."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    def replay(self) -> None:
        """Dead letters were queued: send them before the next records."""
        self._replaying = True
        self._wake.set()

    async def run(self) -> DeliveryError | None:
        """Deliver until stopped; return the error that ended delivery, if one did."""
        try:
            while not self._stopping:
                try:
                    await self._deliver_next()
                except _OURS:
                    raise
                except Exception as exc:  # the service's own failure, not the destination's
                    await self._wait_out(exc)
        except _Failed as failed:
            await self._commit_failure(failed.error)
            return failed.error
        except _Stopped:
            pass
        finally:
            await self._settle_commit()
        return None

    async def _deliver_next(self) -> None:
        batch = await self._next_batch()
        if batch is not None and not self._stopping:
            result, rejected = await self._send(batch)
            await self._acknowledge(batch, result, rejected)

    # -- the service's own failures ----------------------------------------------------------

    async def _wait_out(self, exc: Exception) -> None:
        """Back off until the position can be stored again (or the worker is stopped); the
        next batch then starts from the position in memory, which is never ahead of what the
        destination acknowledged."""
        tries = 0
        while True:
            self.trouble = _described(exc)
            self._metrics.service_errors.labels(self._label).inc()
            delay = self._policy.delay(tries)
            tries += 1
            log = _log.error if tries == 1 else _log.warning
            log(
                "delivery held up by the service's own error, retrying",
                stream=self.stream.id,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_secs=round(delay, 3),
                exc_info=tries == 1 and not isinstance(exc, LogError),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            if self._stopping:
                return
            await self._settle_commit()
            try:
                await self._store.commit_position(self.stream.id, self.stream.position)
            except Exception as again:  # still failing: wait longer
                exc = again
            else:
                break
        _log.info("delivery resumed after the service's own error", stream=self.stream.id)
        self.trouble = None
        self._unread = True  # what the failed step read is unknown: read again

    # -- the next batch ----------------------------------------------------------------------

    async def _next_batch(self) -> LogBatch | Replay | None:
        if self._replaying:
            replay = await self._replay()
            if replay is not None:
                return replay
            self._replaying = False
        return await self._collect()

    async def _replay(self) -> Replay | None:
        """The next dead letters queued for replay, as one batch."""
        stream = self.stream
        letters = await self._store.dead_letters(stream.id, queued_only=True, limit=self._size)
        if not letters:
            return None
        rendering = self.connector.rendering
        rows: list[Row] = []
        payloads: list[bytes] = []
        unrendered: list[Refusal] = []
        sent: list[int] = []
        for letter in letters:
            row = Row(letter.offset, letter.kind, stream.organisation, None, None, letter.body)
            try:
                payloads.append(render_payload(row.kind, row.body, rendering))
            except Unrenderable as failure:
                unrendered.append((row, failure.reason))
            else:
                rows.append(row)
                sent.append(letter.id)
        key = f"{stream.id}-dead-{letters[0].id}-{letters[-1].id}"
        return Replay(_batch(key, payloads, rows), rows, unrendered, sent)

    async def _collect(self) -> LogBatch | None:
        """The stream's next records; ``None`` when stopped, or when dead letters were
        queued while it waited."""
        cut = _Cut(self.stream.position, self._size)
        await self._fill(cut)
        if not cut.taken and not cut.done:  # nothing waits: sleep until records arrive
            await self._skip_to(cut.position)
            await self._finish_commit()  # a failed write is known before the worker sleeps
            self._report_pending()
            self._wake.clear()
            if self._stopping or self._replaying:
                return None
            await self._wait_for(1, None)
            if self._stopping or self._replaying:
                return None
        if not cut.done:
            await self._wait_to_fill(cut)
        if not cut.taken:
            await self._skip_to(cut.position)
            return None
        # the first and last offsets taken (rows and unrendered are each in offset order)
        ends = [row.offset for row in (*cut.rows[:1], *cut.rows[-1:])]
        ends += [row.offset for row, _ in (*cut.unrendered[:1], *cut.unrendered[-1:])]
        key = f"{self.stream.id}-{min(ends)}-{max(ends)}"
        batch = _batch(key, cut.payloads, cut.rows)
        return LogBatch(batch, cut.rows, cut.unrendered, cut.position)

    async def _fill(self, cut: _Cut) -> None:
        """Read what the stream wants after the cut's position, until the cut is done or has
        everything committed before this call (what arrives meanwhile is counted for the next
        call). No read when nothing of the organisation arrived since the last one read
        everything."""
        appended = self._arrivals.count(self.stream.organisation)
        if not self._unread and appended == self._read_at:
            return
        self._read_at = appended
        committed = self._log.last_offset
        while not cut.done and cut.position < committed:
            page = await self._pages.page_after(self._lane, cut.position)
            cut.take(page, self._selected, self.connector)
        self._unread = cut.done  # a full batch may leave more behind

    async def _wait_to_fill(self, cut: _Cut) -> None:
        """Let the batch fill while records keep arriving: read when it may be full, and
        once more when the log is quiet or the batch has waited ``max_wait``."""
        deadline = time.monotonic() + self._max_wait
        while not cut.done:
            if self._may_wait(deadline):
                await self._wait_for_more(cut, deadline)
            last = not self._may_wait(deadline)
            await self._fill(cut)
            if last:
                return

    def _may_wait(self, deadline: float) -> bool:
        quiet = self._quiet
        return (
            not self._stopping
            and time.monotonic() < deadline
            and (quiet is None or not quiet.is_quiet())
        )

    async def _wait_for_more(self, cut: _Cut, deadline: float) -> None:
        """Until enough records arrived to fill the batch, the log is quiet, or ``deadline``."""
        self._wake.clear()
        quiet = self._quiet
        if quiet is not None:
            quiet.call_when_quiet(self._wake.set)
        try:
            await self._wait_for(self._size - len(cut.rows), deadline)
        finally:
            if quiet is not None:
                quiet.cancel(self._wake.set)

    async def _wait_for(self, count: int, deadline: float | None) -> None:
        """Until ``count`` records of the organisation arrived since the last read, or the
        ``deadline`` (monotonic time), or the worker is woken otherwise (stopped, dead letters
        to replay, the log quiet)."""
        organisation = self.stream.organisation
        self._arrivals.wait(organisation, self._read_at + count, self._wake)
        loop = asyncio.get_running_loop()
        timer = (
            None
            if deadline is None
            else loop.call_later(deadline - time.monotonic(), self._wake.set)
        )
        try:
            await self._wake.wait()
        finally:
            self._arrivals.cancel(organisation, self._wake)
            if timer is not None:
                timer.cancel()
        await self._turns.take()  # woken with many others: a few go on per turn

    async def _skip_to(self, position: int) -> None:
        """Move past records the stream's filters leave out."""
        if position > self.stream.position.offset:
            await self._commit(replace(self.stream.position, offset=position, inflight=None))

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, batch: LogBatch | Replay) -> tuple[SendResult, list[Refusal]]:
        """Send until every record is accepted or refused for good; return the last answer
        and the records not delivered (refused, or never rendered) with their reasons."""
        rejected = list(batch.unrendered)
        if not batch.rows:
            return SendResult(), rejected
        if isinstance(batch, LogBatch) and self.connector.stable_batches:
            await self._commit(replace(self.stream.position, inflight=batch.upto))
            if self._stopping:  # stopped while the marker was written: the same batch goes later
                raise _Stopped
        sending, rows = batch.batch, batch.rows
        tries = _Tries()
        started = time.monotonic()
        while True:
            result = await self._try(sending, tries)
            if result is None:
                continue
            rejected += [(rows[index], reason) for index, reason in result.rejected]
            if len(result.retry) < len(sending.payloads):
                self._fail_fast = False  # something went through: not a failure to deliver
            if not result.retry:
                elapsed = time.monotonic() - started
                self._batch_seconds.observe(elapsed)
                if tries.count:
                    _log.info("stream recovered", stream=self.stream.id, retries=tries.count)
                return result, rejected
            self._metrics.failed.labels(self._label).inc(len(result.retry))
            retry = RetryableError(f"{len(result.retry)} records were not accepted")
            await self._back_off(retry, tries, fail_fast=self._fail_fast)
            rows = [rows[i] for i in result.retry]
            sending = _batch(sending.key, [sending.payloads[i] for i in result.retry], rows)
            self._metrics.retried.labels(self._label).inc(len(rows))

    async def _try(self, batch: Batch, tries: _Tries) -> SendResult | None:
        """One send; ``None`` after a retryable failure (backed off already)."""
        try:
            return await self.connector.send(batch)
        except (RetryableError, DestinationMissing) as error:
            self._metrics.failed.labels(self._label).inc(len(batch.payloads))
            await self._back_off(error, tries, fail_fast=self._fails_fast(error))
            self._metrics.retried.labels(self._label).inc(len(batch.payloads))
            return None
        except DeliveryError as error:
            self._metrics.failed.labels(self._label).inc(len(batch.payloads))
            raise _Failed(error) from None

    def _fails_fast(self, error: RetryableError | DestinationMissing) -> bool:
        """Whether ``error`` ends delivery at once: any failure of the first send after a
        create or restart; a missing destination only then (later it may come back)."""
        return self._fail_fast or (
            isinstance(error, DestinationMissing) and self.stream.position.delivered == 0
        )

    async def _back_off(
        self, error: RetryableError | DestinationMissing, tries: _Tries, *, fail_fast: bool
    ) -> None:
        """Sleep before the next try, or raise ``_Failed`` when no try is left."""
        if self._stopping:
            raise _Stopped
        now = time.monotonic()
        tries.since = tries.since or now
        remaining = self._policy.window_secs - (now - tries.since)
        retry_after = error.retry_after if isinstance(error, RetryableError) else None
        if fail_fast or remaining <= 0 or (retry_after or 0) > remaining:
            raise _Failed(error)  # a destination's Retry-After is never cut short
        delay = min(self._policy.delay(tries.count, retry_after), remaining)
        tries.count += 1
        _log.info(
            "send failed, retrying",
            stream=self.stream.id,
            error=error.message,
            http_status=error.http_status,
            retry_in_secs=round(delay, 3),
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)
        if self._stopping:
            raise _Stopped

    # -- acknowledging -----------------------------------------------------------------------

    async def _acknowledge(
        self, batch: LogBatch | Replay, result: SendResult, rejected: list[Refusal]
    ) -> None:
        if batch.rows:  # the destination answered
            self._fail_fast = False
        if rejected:
            await self._dead_letter(rejected)
        position = self.stream.position
        if isinstance(batch, Replay):  # sent again: gone, unless refused once more
            refused = {row.offset for row, _ in rejected}
            sent = zip(batch.letters, batch.rows, strict=True)
            await self._store.drop_dead_letters([i for i, r in sent if r.offset not in refused])
        else:
            position = replace(position, offset=batch.upto, inflight=None)
        delivered = len(batch.rows) + len(batch.unrendered) - len(rejected)
        running = None
        if self._initialised is not None and batch.rows:  # the destination answered
            running = self._initialised()
        self.stream.position = replace(
            position,
            delivered=position.delivered + delivered,
            last_delivery_at=_now(),
            last_result_code=result.http_status,
        )
        self._note_last_ids(batch.rows, {row.offset for row, _ in rejected})
        self._delivered.inc(delivered)
        self._report_pending()
        if running is not None:
            await running  # a failed write is tried again with the next batch
            self._initialised = None
        await self._commit_behind()

    def _note_last_ids(self, rows: list[Row], refused: set[int]) -> None:
        """The ids of the batch's last delivered event and usage record, for the legacy API
        (looked for from the end, until each kind the batch holds is found)."""
        unseen = set(map(_kind, rows))
        for row in reversed(rows):
            if row.kind in unseen and row.offset not in refused:
                unseen.remove(row.kind)
                if row.kind is Kind.EVENT:
                    self.stream.last_event_id = _record_id(row)
                else:
                    self.stream.last_usage_id = _record_id(row)
                if not unseen:
                    return

    async def _dead_letter(self, rejected: list[Refusal]) -> None:
        """Keep what the destination refused for good, or what could not be rendered for it,
        with the reason, for a later replay."""
        _log.warning(
            "records not delivered, kept as dead letters",
            stream=self.stream.id,
            count=len(rejected),
            first_reason=rejected[0][1],
        )
        letters = [(row.offset, row.kind, row.body, reason) for row, reason in rejected]
        await self._store.add_dead_letters(self.stream.id, letters)
        self._metrics.dead_lettered.labels(self._label).inc(len(rejected))

    async def _commit_failure(self, error: DeliveryError) -> None:
        _log.warning(
            "stream failed",
            stream=self.stream.id,
            error=error.message,
            http_status=error.http_status,
        )
        if error.http_status is not None:
            try:
                await self._commit(
                    replace(self.stream.position, last_result_code=error.http_status)
                )
            except LogError as exc:  # only the last result code is lost
                _log.warning("storing the last result code failed", error=str(exc))

    def _report_pending(self) -> None:
        pending = self._log.last_offset - self.stream.position.offset
        self._pending.set(pending)

    async def _commit(self, position: Position) -> None:
        if self._committing is not None:
            await self._committing
            self._committing = None
        self.stream.position = position
        await self._store.commit_position(self.stream.id, position)

    async def _finish_commit(self) -> None:
        """Wait for the position write in flight, if any; raise if it failed."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _settle_commit(self) -> None:
        """Wait for the position write in flight, if any; a failed one is written again by
        the next commit (the position in memory is the newest)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await asyncio.gather(committing, return_exceptions=True)

    async def _commit_behind(self) -> None:
        """Write the new position while the next batch is read and sent: at most one write
        in flight, so after a crash at most the batch before it is sent again."""
        if self._committing is not None:
            await self._committing
        commit = self._store.commit_position(self.stream.id, self.stream.position)
        self._committing = asyncio.ensure_future(commit)


def _described(exc: Exception) -> str:
    """What ``/health/ready`` (no auth) may say of the service's own error: the log's and the
    store's messages; of anything else only its type, the rest is in the service log."""
    if isinstance(exc, LogError):
        return f"{type(exc).__name__}: {exc}"
    return f"internal error ({type(exc).__name__}), see the service log"


def _batch(key: str, payloads: list[bytes], rows: list[Row]) -> Batch:
    return Batch(key, payloads, list(map(_kind, rows)), list(map(_offset, rows)))


_offset = attrgetter("offset")
_kind = attrgetter("kind")


def _record_id(row: Row) -> int | None:
    found = orjson.loads(row.body).get("id")
    return found if isinstance(found, int) else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
