"""The whole service under test: ``streamer run`` as a real subprocess, real aiohttp receivers
on 127.0.0.1, and a small HTTP client holding the bootstrap token.

Nothing here sleeps to synchronise: ``eventually`` polls a condition until a deadline, and the
daemon is known to be up once it logs its ``listening`` line.

The receiver is this suite's own rather than ``tests/receivers.py``. The e2e tests need things
that module does not offer: when each request arrived (monotonic, receiver-side), what it was
answered (which arrays were acknowledged), and a restart on the same port after an outage.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from schemas import Kind, Record, Version, dumps
from streamer.simulate import Fleet

__all__ = [
    "API_POLL_SECS",
    "Daemon",
    "Exchange",
    "NewReceiver",
    "Receiver",
    "Reply",
    "Response",
    "StartDaemon",
    "eventually",
    "fleet_records",
    "ids_of",
    "json_array",
    "ndjson",
]

DEFAULT_DEADLINE_SECS = 20.0
API_POLL_SECS = 0.05
"""Polling the daemon's API: slow enough to stay far below its rate limit (2000 requests per
client in 5 minutes) even through a whole deadline, which is not what these tests are about."""


# --- polling ------------------------------------------------------------------------------------


async def eventually(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    timeout_secs: float = DEFAULT_DEADLINE_SECS,
    *,
    what: str = "",
    interval_secs: float = 0.02,
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; return that.

    Past the deadline, fail with ``what`` and the last value seen, so a timeout says which
    condition did not hold and how far it got.
    """
    deadline = time.monotonic() + timeout_secs
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout_secs} s: {what or condition!r} (last value: {value!r})"
            )
        await asyncio.sleep(interval_secs)


# --- records ------------------------------------------------------------------------------------


def fleet_records(seed: int, count: int, kind: Kind) -> list[Record]:
    """``count`` canonical records of ``kind``, all of organisation 1 (the streams' own)."""
    fleet = Fleet(seed, organisations=1)
    make = fleet.event if kind is Kind.EVENT else fleet.usage
    return [make() for _ in range(count)]


def ndjson(records: Iterable[Record], kind: Kind, version: Version) -> bytes:
    return b"".join(dumps(record, kind, version) + b"\n" for record in records)


def json_array(records: Iterable[Record], kind: Kind, version: Version) -> bytes:
    return b"[" + b",".join(dumps(record, kind, version) for record in records) + b"]"


# --- receiver -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: ``status`` (+ ``headers``, ``body``) after ``delay_secs``; ``hang``
    holds the request open until the receiver stops, and then answers 503."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_secs: float = 0.0
    hang: bool = False


@dataclass(slots=True)
class Exchange:
    """One request as the receiver read it, and what it answered (``None``: not yet, or never)."""

    arrived: float  # time.monotonic() once the whole body was read
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None  # kept only when the receiver keeps bodies
    ids: list[int]  # the ``id`` of each record of the array, in order
    array_len: int | None  # None: the body was not a JSON array
    status: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def records(self) -> list[Any]:
        assert self.body is not None, "this receiver does not keep bodies"
        records: list[Any] = orjson.loads(self.body)
        return records


class Receiver:
    """A webhook destination on 127.0.0.1 that records every request and answers as scripted.

    ``script`` queues answers for the next requests; ``default`` answers the rest. Requests are
    recorded once their body is read and before they are answered; a request whose body never
    arrived whole (the sender died) is not recorded. ``stop``/``start`` take it down and bring
    it back on the same port.
    """

    def __init__(self, *, keep_bodies: bool = True) -> None:
        self.exchanges: list[Exchange] = []
        self.default = Reply()
        self.keep_bodies = keep_bodies
        self._script: list[Reply] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.in_flight = 0  # requests being read or answered right now

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hook"

    def script(self, *replies: Reply | int) -> None:
        self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    def acknowledged(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.acknowledged]

    def ids(self) -> list[int]:
        """Every record id of every acknowledged array, in arrival order (duplicates kept)."""
        return [i for e in self.acknowledged() for i in e.ids]

    def id_set(self) -> set[int]:
        return set(self.ids())

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Close the port (connections refused until ``start``); hung requests are released."""
        if self._runner is not None:
            release, self._release = self._release, asyncio.Event()
            release.set()
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()  # raises if the sender went away mid-body: not delivered
        exchange = Exchange(
            arrived=time.monotonic(),
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=body if self.keep_bodies else None,
            ids=[],
            array_len=None,
        )
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            exchange.array_len = len(parsed)
            exchange.ids = [
                i for r in parsed if isinstance(r, dict) and isinstance(i := r.get("id"), int)
            ]
        self.exchanges.append(exchange)
        reply = self._script.pop(0) if self._script else self.default
        if reply.hang:
            await self._release.wait()
            reply = Reply(503)  # the receiver is going away
        if reply.delay_secs:
            await asyncio.sleep(reply.delay_secs)
        exchange.status = reply.status
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))


# --- daemon -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


_USE_TOKEN = object()


class Daemon:
    """``python -m streamer run`` on a data directory; restartable on the same directory.

    Everything it writes to stdout and stderr, across all its runs, is kept in ``output``.
    """

    def __init__(self, data_dir: Path, token: str, env: Mapping[str, str]) -> None:
        self.data_dir = data_dir
        self.token = token
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")},
            "PYTHONUNBUFFERED": "1",
            "STREAMER_DATA_DIR": str(data_dir),
            "STREAMER_LISTEN": "127.0.0.1:0",
            "STREAMER_BOOTSTRAP_TOKEN": token,
            "STREAMER_ALLOW_PRIVATE_DESTINATIONS": "true",
            "STREAMER_LOG_FORMAT": "json",
            "STREAMER_RETRY_MAX_SECS": "3",
            "STREAMER_RETRY_BASE_SECS": "0.05",
            "STREAMER_SYNC": "normal",
            "STREAMER_INGEST_WORKERS": "1",  # ingest parses in a worker process, as in service
            **env,
        }
        self.output: list[str] = []
        self.base_url = ""
        self.process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @property
    def shutdown_timeout_secs(self) -> float:
        return float(self.env.get("STREAMER_SHUTDOWN_TIMEOUT_SECS", "10"))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    # -- process -------------------------------------------------------------------------------

    async def start(self, timeout_secs: float = 30.0) -> None:
        assert not self.running, "already running"
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streamer",
            "run",
            env=self.env,
            cwd=self.data_dir.parent,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.process.stdout, None)),
            asyncio.create_task(self._read(self.process.stderr, listening)),
        ]
        try:
            async with asyncio.timeout(timeout_secs):
                self.base_url = await listening
        except (TimeoutError, EOFError):
            await self.kill9()
            raise AssertionError(
                "the daemon did not log 'listening':\n" + "\n".join(self.output[-50:])
            ) from None

    async def _read(
        self, stream: asyncio.StreamReader, listening: asyncio.Future[str] | None
    ) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.output.append(text)
            if listening is not None and not listening.done() and '"listening"' in text:
                try:
                    event = orjson.loads(text)
                except orjson.JSONDecodeError:
                    continue
                if event.get("event") == "listening":
                    listening.set_result(event["url"])
        if listening is not None and not listening.done():
            listening.set_exception(EOFError("the daemon exited"))

    def events(self, name: str) -> list[dict[str, Any]]:
        """The log lines of the event ``name`` the daemon wrote so far, parsed."""
        marker = orjson.dumps(name).decode()
        found = [orjson.loads(line) for line in self.output if marker in line]
        return [event for event in found if event.get("event") == name]

    async def stop(self, timeout_secs: float | None = None) -> tuple[int, float]:
        """SIGTERM; wait for the exit. Return the exit code and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        limit = timeout_secs if timeout_secs is not None else self.shutdown_timeout_secs + 30
        try:
            async with asyncio.timeout(limit):
                code = await self.process.wait()
        except TimeoutError:
            await self.kill9()
            raise AssertionError(f"the daemon did not exit within {limit} s of SIGTERM") from None
        elapsed = time.monotonic() - started
        await self._drain()
        return code, elapsed

    async def kill9(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._drain()

    async def restart(self) -> None:
        """Start again on the same data directory (after ``stop`` or ``kill9``)."""
        await self.start()

    async def _drain(self) -> None:
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers = []

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: Any = _USE_TOKEN,
    ) -> Response:
        """One request; ``token=None`` sends no Authorization header (``headers`` may)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=60), auto_decompress=True
            )
        sent: dict[str, str] = {}
        if token is _USE_TOKEN:
            sent["Authorization"] = f"Bearer {self.token}"
        elif token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json is not None:
            data = orjson.dumps(json)
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        async with self._session.request(
            method, self.base_url + path, data=data, headers=sent
        ) as response:
            body = await response.read()
            return Response(response.status, dict(response.headers), body)

    async def create_stream(
        self,
        url: str,
        *,
        version: Version = Version.NEW,
        size: int = 500,
        type_id: int = 3,
        **more: Any,
    ) -> int:
        credentials = {"url": url, "size": size, **more.pop("credentials", {})}
        body = {
            "name": f"e2e {version} → {url}",
            "data_stream_type": {"id": type_id},
            "destination": {"connection_type": "RestAPI", "credentials": credentials},
            "format_version": str(version),
            "organisation": {"id": 1},
            **more,
        }
        response = await self.request("POST", "/api/v2/data_stream", json=body)
        assert response.status == 201, (response.status, response.text)
        location = response.headers["Location"]
        assert location.startswith("/api/v2/data_stream/"), location
        return int(location.rsplit("/", 1)[1])

    async def create_destination_stream(
        self,
        connection_type: str,
        credentials: Mapping[str, Any],
        *,
        version: Version = Version.NEW,
        type_id: int = 3,
        **more: Any,
    ) -> int:
        """A stream of organisation 1 to any destination (``create_stream`` is the webhook's)."""
        body = {
            "name": f"e2e {version} → {connection_type}",
            "data_stream_type": {"id": type_id},
            "destination": {"connection_type": connection_type, "credentials": dict(credentials)},
            "format_version": str(version),
            "organisation": {"id": 1},
            **more,
        }
        response = await self.request("POST", "/api/v2/data_stream", json=body)
        assert response.status == 201, (response.status, response.text)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    async def stream(self, stream_id: int) -> dict[str, Any]:
        response = await self.request("GET", f"/api/v2/data_stream/{stream_id}")
        assert response.status == 200, (response.status, response.text)
        stream: dict[str, Any] = response.json()
        return stream

    async def ingest(
        self,
        kind: Kind,
        body: bytes,
        *,
        ndjson: bool = False,
        gzipped: bool = False,
        fmt: str = "auto",
    ) -> Response:
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        path = "/api/v1/ingest/" + ("events" if kind is Kind.EVENT else "usage")
        return await self.request("POST", f"{path}?format={fmt}", data=body, headers=headers)

    async def ingest_ok(self, kind: Kind, body: bytes, count: int, **options: Any) -> None:
        response = await self.ingest(kind, body, **options)
        assert response.status == 202, (response.status, response.text)
        assert response.json() == {"accepted": count}

    async def settled(self, stream_id: int, delivered: int) -> dict[str, Any]:
        """Wait until the stream counts ``delivered`` records and none pending; return it.

        A receiver has a batch before the daemon has read the answer and moved the stream's
        position, so assertions on a stream's stats wait for this first."""

        async def done() -> dict[str, Any] | None:
            stream = await self.stream(stream_id)
            stats = stream["stats"]
            ok = stats["delivered_records"] == delivered and stats["pending_records"] == 0
            return stream if ok else None

        stream: dict[str, Any] = await eventually(
            done,
            what=f"stream {stream_id}: {delivered} delivered, none pending",
            interval_secs=API_POLL_SECS,
        )
        return stream

    async def status(self, stream_id: int) -> int:
        status: int = (await self.stream(stream_id))["status"]["id"]
        return status

    async def reaches_status(self, stream_id: int, status: int) -> dict[str, Any]:
        """Wait until the stream has status ``status``; return it."""

        async def reached() -> dict[str, Any] | None:
            stream = await self.stream(stream_id)
            return stream if stream["status"]["id"] == status else None

        stream: dict[str, Any] = await eventually(
            reached, what=f"stream {stream_id} status {status}", interval_secs=API_POLL_SECS
        )
        return stream

    async def patch_status(self, stream_id: int, status: int) -> None:
        """Pause (2) or resume (1) the stream; wait until it shows the new status."""
        response = await self.request(
            "PATCH", f"/api/v2/data_stream/{stream_id}", json={"status": {"id": status}}
        )
        assert response.status == 202, (response.status, response.text)
        await self.reaches_status(stream_id, status)

    async def dead_letters(self, stream_id: int) -> list[dict[str, Any]]:
        """``GET /api/v2/data_stream/{id}/dead_letter``: the stream's dead letters, oldest first."""
        response = await self.request("GET", f"/api/v2/data_stream/{stream_id}/dead_letter")
        assert response.status == 200, (response.status, response.text)
        letters: list[dict[str, Any]] = response.json()
        return letters

    async def metric(self, name: str, **labels: str) -> float | None:
        """The value of the sample ``name`` with exactly ``labels`` on ``/metrics``, if any."""
        response = await self.request("GET", "/metrics", token=None)
        assert response.status == 200, (response.status, response.text)
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return None


StartDaemon = Callable[..., Awaitable[Daemon]]
"""``await start_daemon(STREAMER_X="...")``: a running daemon on a fresh data directory."""
NewReceiver = Callable[..., Awaitable[Receiver]]
"""``await new_receiver(keep_bodies=True)``: a started receiver."""


def ids_of(records: Sequence[Record]) -> list[int]:
    return [record["id"] for record in records]
