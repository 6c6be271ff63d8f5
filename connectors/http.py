"""What the HTTP connectors share: the private-address guard, status classification, and
mapping aiohttp's errors onto the connector error tree."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy

from connectors.base import DeliveryError, DestinationMissing, FatalError, RetryableError

__all__ = [
    "Answer",
    "Client",
    "GuardedResolver",
    "PrivateDestinationError",
    "Sessions",
    "check_destination",
    "error_for_exception",
    "error_for_status",
    "new_session",
    "post_within_origin",
]

_MAX_REDIRECTS = 5


class PrivateDestinationError(OSError):
    """The destination is on a loopback, private or link-local address and those are refused."""


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _is_public(address: str) -> bool:
    """A global unicast address; an IPv6 address that embeds an IPv4 one (IPv4-mapped,
    IPv4-compatible, NAT64, 6to4) is judged by the IPv4 address it reaches."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _is_public(str(embedded))
    return ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) >> 32 == 0 or any(ip in network for network in _NAT64):  # ::a.b.c.d, NAT64
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host is a non-public IP literal or ``localhost`` (names that resolve
    to such addresses are refused at connect time by ``GuardedResolver``)."""
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").rstrip(".")  # "localhost." is "localhost"
    if host == "localhost" or host.endswith(".localhost"):
        raise PrivateDestinationError(f"{host} is a loopback destination")
    try:
        public = _is_public(host)
    except ValueError:
        return  # a name: checked when it resolves
    if not public:
        raise PrivateDestinationError(f"{host} is not a public address")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to non-public addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                if not _is_public(result["host"]):
                    raise PrivateDestinationError(
                        f"{host} resolves to {result['host']}, which is not a public address"
                    )
        return results

    async def close(self) -> None:
        await self._inner.close()


def new_session(allow_private: bool, timeout_secs: float, limit: int = 8) -> aiohttp.ClientSession:
    """A client session with verified TLS, the address guard, a total timeout per request,
    at most ``limit`` connections (0: no limit) and no cookies: a session is shared by the
    streams of every organisation, so a cookie one destination sets must never travel with
    another stream's records."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private), limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_secs),
        auto_decompress=True,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class Sessions:
    """Client sessions shared by the HTTP connectors of a service, one per setting of the
    address guard and timeout: the streams that send to one host reuse its keep-alive
    connections instead of each opening its own. No limit on connections, so a stream never
    waits for a connection another stream's slow destination holds. Closed by their owner."""

    def __init__(self) -> None:
        self._open: dict[tuple[bool, float], aiohttp.ClientSession] = {}

    def get(self, allow_private: bool, timeout_secs: float) -> aiohttp.ClientSession:
        key = (allow_private, timeout_secs)
        session = self._open.get(key)
        if session is None or session.closed:
            session = self._open[key] = new_session(allow_private, timeout_secs, limit=0)
        return session

    async def aclose(self) -> None:
        sessions, self._open = list(self._open.values()), {}
        for session in sessions:
            await session.close()


class Client:
    """A connector's client session, made on first use: the shared one of ``sessions``, or
    one of its own (closed by ``aclose``)."""

    def __init__(self, allow_private: bool, timeout_secs: float, sessions: Sessions | None) -> None:
        self._allow_private = allow_private
        self._timeout = timeout_secs
        self._sessions = sessions
        self._own: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._sessions is not None:
            return self._sessions.get(self._allow_private, self._timeout)
        if self._own is None:
            self._own = new_session(self._allow_private, self._timeout)
        return self._own

    async def aclose(self) -> None:
        if self._own is not None:
            await self._own.close()
            self._own = None


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(status: int, headers: Any, detail: str = "") -> DeliveryError:
    """The error a non-2xx answer means: 408, 429 and 5xx retryable, 404 and 410 a missing
    destination, anything else fatal."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    message = f"{status} {phrase}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        return RetryableError(message, status, retry_after(headers.get("Retry-After")))
    if status in (404, 410):
        return DestinationMissing(message, status)
    return FatalError(message, status)


def error_for_exception(exc: BaseException) -> DeliveryError:
    """Map aiohttp's and the network's errors onto the error tree."""
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    if isinstance(cause, PrivateDestinationError) or isinstance(exc, PrivateDestinationError):
        return FatalError(f"destination refused: {cause}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return FatalError(f"TLS verification failed: {exc}")
    if isinstance(exc, TimeoutError):
        return RetryableError("the request timed out")
    if isinstance(exc, aiohttp.InvalidURL):
        return FatalError(f"invalid URL: {exc}")
    return RetryableError(f"network error: {exc}")


@dataclass(frozen=True, slots=True)
class Answer:
    """A destination's final answer: status, headers, and the body (all of it for 2xx and 413,
    the first 300 bytes otherwise, for the error message)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def post_within_origin(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> Answer:
    """POST ``body``, following 307/308 (method and body kept, five hops at most) only within
    the same scheme, host and port, so credentials in ``headers`` never travel elsewhere.
    Network errors are mapped onto the error tree; the status is the caller's to judge."""
    try:
        for _ in range(_MAX_REDIRECTS + 1):
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                if status in (307, 308) and "Location" in response.headers:
                    url = _same_origin(url, urljoin(url, response.headers["Location"]), status)
                    continue
                whole = 200 <= status < 300 or status == 413
                answer = await (response.read() if whole else response.content.read(300))
                return Answer(status, response.headers, answer)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise error_for_exception(exc) from None
    raise FatalError(f"more than {_MAX_REDIRECTS} redirects", 308)


def _same_origin(source: str, target: str, status: int) -> str:
    before, after = urlsplit(source), urlsplit(target)
    if (before.scheme, before.hostname, before.port) != (after.scheme, after.hostname, after.port):
        raise FatalError(f"refused a redirect to another host ({after.hostname})", status)
    return target
