"""Connecting to NATS for the JetStream backend, and turning its failures into ``LogError``.

A connection reconnects forever (every second) once it was made: while NATS is away,
writes fail with ``LogError`` after ``REQUEST_TIMEOUT_SECS`` (ingest answers 503) and
delivery waits; once NATS is back the same connection carries on. The URL may name several
servers, comma-separated, and hold a user and password or a token
(``nats://user:password@host:4222``); it is shown masked everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client

from streamer.log.base import LogError, LogFullError
from streamer.redact import mask_urls

__all__ = ["REQUEST_TIMEOUT_SECS", "NatsOptions", "close", "connect", "failures"]

REQUEST_TIMEOUT_SECS = 5.0
"""The longest a write waits for JetStream's acknowledgement before it fails."""
_CONNECT_TIMEOUT_SECS = 2
_FIRST_CONNECT_SECS = 5.0
_log = structlog.get_logger("streamer.nats")


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where NATS is and how to reach it (``STREAMER_NATS_*``)."""

    url: str
    replicas: int = 1
    """Copies JetStream keeps of every stream and bucket (a NATS cluster's nodes)."""
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @property
    def servers(self) -> list[str]:
        """The URL's servers (it may name several, comma-separated)."""
        return [server.strip() for server in self.url.split(",")]

    @property
    def shown_url(self) -> str:
        return mask_urls(self.url)

    def tls(self) -> ssl.SSLContext | None:
        """A verifying TLS context when the URL or a file asks for TLS; ``None`` otherwise."""
        wants_tls = any(server.startswith("tls://") for server in self.servers) or any(
            path is not None for path in (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        )
        if not wants_tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.tls_ca_file is None else str(self.tls_ca_file)
        )
        if self.tls_cert_file is not None:
            key = None if self.tls_key_file is None else str(self.tls_key_file)
            context.load_cert_chain(str(self.tls_cert_file), key)
        return context


async def connect(options: NatsOptions, name: str) -> Client:
    """A connection to NATS; ``LogError`` naming the (masked) URL if there is none within
    ``_FIRST_CONNECT_SECS``."""
    client = Client()
    failed: list[str] = []  # why the first tries failed
    try:
        await asyncio.wait_for(_connect(client, options, name, failed), _FIRST_CONNECT_SECS)
    except (OSError, ssl.SSLError, nats.errors.Error, TimeoutError) as exc:
        await client.close()
        reason = str(exc) or (failed[-1] if failed else "no answer")
        raise LogError(
            f"cannot connect to NATS at {options.shown_url} (STREAMER_NATS_URL): {reason}"
        ) from None
    return client


async def close(client: Client) -> None:
    """Close ``client``, NATS there or not: with NATS away the client's last flush fails, and
    a replica stopped then must still exit cleanly (every write was acknowledged or failed
    already)."""
    with contextlib.suppress(OSError, nats.errors.Error, TimeoutError):
        await client.close()


async def _connect(client: Client, options: NatsOptions, name: str, failed: list[str]) -> None:
    """Connect ``client``; until it is connected, errors go to ``failed`` rather than the
    log (the caller reports the last one)."""
    shown = options.shown_url

    async def disconnected() -> None:
        if not client.is_closed:  # not this process closing it
            _log.warning("NATS connection lost, reconnecting", url=shown, connection=name)

    async def reconnected() -> None:
        _log.info("NATS connection back", url=shown, connection=name)

    async def error(exc: Exception) -> None:
        if client.is_connected or client.is_reconnecting:
            _log.warning("NATS connection error", url=shown, connection=name, error=str(exc))
        else:
            failed.append(str(exc))

    await client.connect(
        options.servers,
        name=f"streamer {name}",
        tls=options.tls(),
        connect_timeout=_CONNECT_TIMEOUT_SECS,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )


@contextlib.contextmanager
def failures(doing: str) -> Iterator[None]:
    """Turn NATS's and JetStream's failures while ``doing`` into ``LogError`` (a full store
    into ``LogFullError``)."""
    try:
        yield
    except nats.js.errors.APIError as exc:
        if exc.err_code in _FULL_CODES:
            raise LogFullError(f"{doing} failed: JetStream is full: {exc.description}") from None
        raise LogError(f"{doing} failed: {exc.description or exc}") from None
    except (TimeoutError, nats.errors.Error) as exc:
        raise LogError(f"{doing} failed: NATS did not answer ({type(exc).__name__})") from None


_FULL_CODES = frozenset(
    {
        10023,  # insufficient resources
        10028,  # memory resources exceeded
        10047,  # storage resources exceeded
    }
)
"""JetStream error codes for a store that cannot take more now."""
