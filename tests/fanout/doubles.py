"""A scripted in-memory destination, and a harness that drives the real ``Fanout`` over a real
log and store (``SqliteLog``, or a JetStream log and store as one ``Combined``) with it.

The double implements the connector contract (``connectors/base.py``) and nothing more: it
records every try with its monotonic time, answers from a script (an error to raise, a
``SendResult`` to return, or a ``Block`` to hang on), and keeps what it acknowledged. Every
connector built for one stream name shares one ``Destination``, so what a stream delivered
survives restarts of its worker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.base import Batch, Rendering, SendResult
from schemas import Kind, Record, Version, dumps
from streamer.fanout.engine import Fanout
from streamer.fanout.retry import RetryPolicy
from streamer.log.base import Entry, Leases, Stream, StreamStatus
from streamer.metrics import Metrics
from streamer.simulate import Fleet
from streamer.spec import RestApiCredentials, StreamSpec
from tests.log.backends import LogAndStore

FAST = RetryPolicy(window_secs=5.0, base_secs=0.01, cap_secs=0.05)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Return once ``predicate()`` holds; fail the test if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.005)


@dataclass
class Block:
    """An answer that hangs until ``release`` is set (never, if nobody sets it), then answers
    ``then``."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    then: Answer = None


Answer = BaseException | SendResult | Block | None  # None: all accepted, HTTP 200


class Attempt(NamedTuple):
    at: float  # time.monotonic() when send was called
    batch: Batch


class Destination:
    """What one stream's connectors deliver to."""

    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.default: Answer = None  # the answer once the script is used up
        self.attempts: list[Attempt] = []
        self.received: list[tuple[int, bytes]] = []  # (offset, payload) acknowledged
        self.cancelled = 0
        self.connectors: list[FakeConnector] = []  # every one built, in order

    @property
    def built(self) -> int:
        return len(self.connectors)

    @property
    def unclosed_senders(self) -> list[FakeConnector]:
        """Connectors that sent something and were not closed."""
        return [c for c in self.connectors if c.sent and not c.closed]

    @property
    def offsets(self) -> list[int]:
        return [offset for offset, _ in self.received]

    @property
    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.received]


class FakeConnector:
    """The in-memory connector double."""

    linger_secs: float | None = None  # the service's linger
    stable_batches: bool = False

    def __init__(self, destination: Destination, rendering: Rendering, max_batch: int) -> None:
        self.destination = destination
        self.rendering = rendering
        self.max_batch = max_batch
        self.sent = False
        self.closed = False
        destination.connectors.append(self)

    async def send(self, batch: Batch) -> SendResult:
        assert not self.closed, "send on a closed connector"
        self.sent = True
        destination = self.destination
        destination.attempts.append(Attempt(time.monotonic(), batch))
        answer = destination.script.popleft() if destination.script else destination.default
        while isinstance(answer, Block):
            try:
                await answer.release.wait()
            except asyncio.CancelledError:
                destination.cancelled += 1
                raise
            answer = answer.then
        if isinstance(answer, BaseException):
            raise answer
        result = answer or SendResult(200)
        failed = {*result.retry, *(index for index, _ in result.rejected)}
        pairs = zip(batch.offsets, batch.payloads, strict=True)
        destination.received += [pair for index, pair in enumerate(pairs) if index not in failed]
        return result

    async def healthcheck(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


class Stored(NamedTuple):
    """A record as the test appended it."""

    offset: int
    kind: Kind
    organisation: int
    record: Record
    body: bytes


def stream_spec(
    name: str,
    *,
    kinds: int = 3,
    size: int = 1000,
    filters: Sequence[dict[str, Any]] = (),
    version: str = "new",
    historic: bool = False,
) -> StreamSpec:
    """A valid stream definition."""
    return StreamSpec.model_validate(
        {
            "name": name,
            "data_stream_type": {"id": kinds},
            "destination": {
                "connection_type": "RestAPI",
                "credentials": {"url": "https://receiver.example/hook", "size": size},
            },
            "filters": list(filters),
            "format_version": version,
            "stream_historic_data": historic,
        }
    )


class Harness:
    """A ``Fanout`` over ``log`` whose connectors are ``FakeConnector``s, one ``Destination``
    per stream name, fed with records of a simulated fleet of three organisations."""

    def __init__(
        self,
        log: LogAndStore,
        policy: RetryPolicy = FAST,
        destinations: defaultdict[str, Destination] | None = None,
        linger_secs: float = 0.0,
        max_wait_secs: float = 0.0,
        leases: Leases | None = None,
    ) -> None:
        self.log = log
        self.destinations = destinations if destinations is not None else defaultdict(Destination)
        self.connectors: list[FakeConnector] = []  # every one this harness built, in order
        self.metrics = Metrics()
        self.fanout = Fanout(
            log,
            log,
            self._connector,
            policy=policy,
            metrics=self.metrics,
            linger_secs=linger_secs,
            max_wait_secs=max_wait_secs,
            leases=leases,
        )
        self.fleet = Fleet(seed=7, organisations=3)
        self.stored: list[Stored] = []
        self.last_append_at = float("-inf")  # monotonic time the engine last heard of records
        self._random = random.Random(7)

    def _connector(self, spec: StreamSpec, stream_id: int | None) -> FakeConnector:
        credentials = spec.destination.credentials
        assert isinstance(credentials, RestApiCredentials)
        assert spec.name is not None
        rendering = Rendering(spec.format_version)
        connector = FakeConnector(self.destinations[spec.name], rendering, credentials.size)
        self.connectors.append(connector)
        return connector

    def __getitem__(self, name: str) -> Destination:
        return self.destinations[name]

    async def append(
        self, events: int = 0, usage: int = 0, organisation: int | None = None
    ) -> list[Stored]:
        """Append ``events`` and ``usage`` records in one go (of ``organisation`` only, if
        given), shuffled, and wake the workers."""
        kinds = [Kind.EVENT] * events + [Kind.USAGE] * usage
        self._random.shuffle(kinds)
        records: list[tuple[Kind, Record]] = []
        for kind in kinds:
            record = self._record(kind)
            while organisation is not None and record["organisation"]["id"] != organisation:
                record = self._record(kind)
            records.append((kind, record))
        entries = [_entry(kind, record) for kind, record in records]
        last = await self.log.append(entries)
        self.last_append_at = time.monotonic()
        self.fanout.notify(entries)
        first = last - len(entries) + 1
        appended = [
            Stored(first + i, kind, record["organisation"]["id"], record, entry.body)
            for i, ((kind, record), entry) in enumerate(zip(records, entries, strict=True))
        ]
        self.stored += appended
        return appended

    def _record(self, kind: Kind) -> Record:
        return self.fleet.event() if kind is Kind.EVENT else self.fleet.usage()

    async def create(self, name: str, organisation: int = 1, **spec: Any) -> int:
        """Create a stream through the engine (fail fast on its first send)."""
        state = await self.fanout.create(organisation, stream_spec(name, **spec))
        return state.id

    async def restore(self, *streams: tuple[str, int, dict[str, Any]]) -> list[int]:
        """Store streams that were Running when the service last stopped, then start the
        engine: no fail fast for them. Only before any ``create``."""
        assert not self.fanout.streams()
        ids = []
        for name, organisation, spec in streams:
            stream = await self.log.create_stream(
                organisation, stream_spec(name, **spec), self.log.last_offset
            )
            await self.log.set_status(stream.id, StreamStatus.RUNNING, None)
            ids.append(stream.id)
        await self.fanout.start()
        return ids

    def state(self, stream_id: int) -> Stream:
        state = self.fanout.get(stream_id)
        assert state is not None
        return state

    async def saved(self, stream_id: int) -> Stream:
        """The stream as the store has it."""
        (state,) = [s for s in await self.log.streams() if s.id == stream_id]
        return state

    async def wait_saved(
        self, stream_id: int, predicate: Callable[[Stream], bool], timeout: float = 10.0
    ) -> None:
        """Return once the stored stream satisfies ``predicate`` (writes may trail a send)."""
        deadline = time.monotonic() + timeout
        while not predicate(saved := await self.saved(stream_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"the stored stream never got there: {saved}")
            await asyncio.sleep(0.005)

    def sample(self, metric: str, stream_id: int) -> float | None:
        return self.metrics.registry.get_sample_value(metric, {"stream": str(stream_id)})

    def offsets(self, where: Callable[[Stored], bool]) -> list[int]:
        return [stored.offset for stored in self.stored if where(stored)]


def _entry(kind: Kind, record: Record) -> Entry:
    body = dumps(record, kind, Version.NEW)
    if kind is Kind.USAGE:
        return Entry(kind, record["organisation"]["id"], None, None, body)
    alert = record.get("alert")
    return Entry(
        kind,
        record["organisation"]["id"],
        record["event_type"]["id"],
        None if alert is None else int(alert),
        body,
    )
