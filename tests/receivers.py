"""A real HTTP receiver on loopback for tests: it records every request and answers as scripted.

    async with Receiver() as receiver:
        receiver.script(Reply(503, headers={"Retry-After": "2"}), Reply(200))
        ...  # point a client at receiver.url
        assert receiver.requests[0].headers["Idempotency-Key"] == ...

Guarantees: it listens only on a loopback address (``127.0.0.1`` or ``::1``) on a port the
kernel picks, and ``start()`` after ``close()`` listens again on the same port (an outage);
every request is recorded (method, path with query, headers, body as aiohttp's server read it,
i.e. after undoing ``Content-Encoding``, monotonic arrival time, and the reply it gets) *before*
it is answered, so a request the receiver hangs on is already visible; answers are taken from
the script in order, and ``default`` answers once the script is used up. A ``hang`` reply holds
the request open until the receiver closes, so ``close()`` never waits on a hung handler.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDictProxy

__all__ = ["Received", "Receiver", "Reply", "eventually"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer; ``delay_secs`` waits before answering, ``hang`` never answers,
    ``hold`` answers once the test sets it."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_secs: float = 0.0
    hang: bool = False
    hold: asyncio.Event | None = None

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Reply:
        return cls(status, headers={"Location": location})


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the receiver saw it: ``peer`` is the client's (address, port), ``at``
    the ``time.monotonic()`` of its arrival, ``reply`` what it was (or is being) answered."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    peer: tuple[str, int]
    at: float
    reply: Reply

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An aiohttp server on a loopback address; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{host} is not a loopback address")
        self.host = host
        self.requests: list[Received] = []
        self.default = Reply()
        self._ssl_context = ssl_context
        self._script: deque[Reply] = deque()
        self._arrived = asyncio.Condition()
        self._closing = asyncio.Event()
        self._transports: list[asyncio.BaseTransport] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the receiver is not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def script(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests (an ``int`` is a bare status)."""
        self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    def open_connections(self) -> int:
        """Client connections that carried a request and are still open on the server side."""
        return sum(not t.is_closing() for t in self._transports)

    async def wait_for_requests(self, count: int, timeout_secs: float = 5.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived (``TimeoutError`` past the deadline)."""
        async with asyncio.timeout(timeout_secs), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port or 0))
            self._port = sock.getsockname()[1]
            await web.SockSite(self._runner, sock, ssl_context=self._ssl_context).start()
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        """Stop listening and drop every connection; hung requests are released first."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._closing = asyncio.Event()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        at = time.monotonic()
        transport = request.transport
        peer = transport.get_extra_info("peername")[:2] if transport else ("", 0)
        if transport is not None and transport not in self._transports:
            self._transports.append(transport)
        reply = self._script.popleft() if self._script else self.default
        closing = self._closing
        async with self._arrived:
            self.requests.append(
                Received(request.method, request.path_qs, request.headers, body, peer, at, reply)
            )
            self._arrived.notify_all()
        if reply.hang:
            await closing.wait()
            raise web.HTTPServiceUnavailable()
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.delay_secs:
            await asyncio.sleep(reply.delay_secs)
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))


async def eventually(condition: Callable[[], bool], timeout_secs: float = 5.0) -> None:
    """Wait until ``condition()`` holds, checking every few milliseconds; ``TimeoutError`` past
    the deadline. For state with no event to wait on (a peer's socket closing)."""
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{condition} did not hold within {timeout_secs} s")
        await asyncio.sleep(0.005)
