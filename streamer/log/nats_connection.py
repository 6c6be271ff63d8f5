"""Connecting to NATS for the JetStream backend, and turning its failures into ``LogError``.

A connection reconnects forever (every second) once it was made: while NATS is away,
writes fail with ``LogError`` at once (ingest answers 503) and delivery waits; once NATS is
back the same connection carries on. Nothing is held back while it reconnects (nats-py's
``pending_size=0``, and no request is made then): a held-back write would be sent when NATS
is back, and a record refused with 503, or a pause refused so, would be stored after all,
seconds or minutes later. One already on its way when the connection broke may still be
stored, as any write whose answer is lost. A write NATS does not answer within
``REQUEST_TIMEOUT_SECS`` fails as well. (While connected, ``pending_size=0`` only means a
large append is written to the socket in one go rather than every 2 MB.) The URL may name several
servers, comma-separated, and hold a user and password or a token
(``nats://user:password@host:4222``); it is shown masked everywhere.

A credentials file (``STREAMER_NATS_CREDS_FILE``: a user JWT and its NKEY seed, as NATS
accounts issue them) or a bare NKEY seed file (``STREAMER_NATS_NKEY_SEED_FILE``) authenticates
the connection instead. Both hold secrets: they are checked before connecting (a missing,
unreadable or malformed file is one ``LogError`` line, never its contents). nats-py reads the
credentials file again at every reconnect (a renewed one is picked up); it takes the seed
file's public key once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import nats.js.errors
import nkeys
import structlog
from nats.aio.client import Client

from streamer.log.base import LogError, LogFullError
from streamer.redact import mask_urls

__all__ = [
    "RECONNECTING",
    "REQUEST_TIMEOUT_SECS",
    "NatsOptions",
    "close",
    "connect",
    "failures",
    "warn_loose_secret_files",
]

REQUEST_TIMEOUT_SECS = 5.0
RECONNECTING = "NATS is out of reach, reconnecting"
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
    creds_file: Path | None = None
    """A ``.creds`` file: a user JWT and its NKEY seed (``STREAMER_NATS_CREDS_FILE``)."""
    nkey_seed_file: Path | None = None
    """A file holding an NKEY user seed (``STREAMER_NATS_NKEY_SEED_FILE``)."""

    def secret_files(self) -> dict[str, Path]:
        """The files of secrets that are set, by their setting's name."""
        files = {
            "STREAMER_NATS_CREDS_FILE": self.creds_file,
            "STREAMER_NATS_NKEY_SEED_FILE": self.nkey_seed_file,
        }
        return {setting: path for setting, path in files.items() if path is not None}

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
    _check_secret_files(options)
    client = Client()
    failed: list[str] = []  # why the first tries failed
    try:
        await asyncio.wait_for(_connect(client, options, name, failed), _FIRST_CONNECT_SECS)
    except (OSError, ssl.SSLError, nats.errors.Error, TimeoutError) as exc:
        await client.close()
        reason = str(exc) or _why(failed)
        raise LogError(
            f"cannot connect to NATS at {options.shown_url} (STREAMER_NATS_URL): {reason}"
        ) from None
    return client


async def close(client: Client) -> None:
    """Close ``client``, NATS there or not: with NATS away the client's last flush fails, and
    a replica stopped then must still exit cleanly (every write was acknowledged or failed
    already). A close still waiting after ``REQUEST_TIMEOUT_SECS`` is given up: shutdown has
    a deadline, and the server drops the connection of a process that left."""
    with contextlib.suppress(OSError, nats.errors.Error, TimeoutError):
        await asyncio.wait_for(client.close(), REQUEST_TIMEOUT_SECS)


def _why(failed: list[str]) -> str:
    """Why the first tries failed: the server's own refusal if it sent one (``nats: …``; the
    connection it then closes may fail later tries with a mere reset), else the last error."""
    refusals = [failure for failure in failed if failure.startswith("nats: ")]
    return (refusals or failed or ["no answer"])[-1]


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
        if isinstance(exc, nats.errors.OutboundBufferLimitError):  # a write while reconnecting
            return
        if client.is_connected or client.is_reconnecting:
            _log.warning("NATS connection error", url=shown, connection=name, error=str(exc))
        else:
            failed.append(str(exc))

    await client.connect(
        options.servers,
        name=f"streamer {name}",
        tls=options.tls(),
        user_credentials=None if options.creds_file is None else str(options.creds_file),
        nkeys_seed=None if options.nkey_seed_file is None else str(options.nkey_seed_file),
        connect_timeout=_CONNECT_TIMEOUT_SECS,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        pending_size=0,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )


def warn_loose_secret_files(options: NatsOptions) -> None:
    """Log a warning for each file of secrets that others may read: anyone but this user and
    this process's own group (the group a Kubernetes ``fsGroup`` gives a mounted Secret)."""
    for setting, path in options.secret_files().items():
        with contextlib.suppress(OSError):  # connecting says what is wrong with it
            status = path.stat()
            others = status.st_mode & stat.S_IROTH or (
                status.st_mode & stat.S_IRGRP and status.st_gid != os.getegid()
            )
            if others:
                _log.warning(
                    "NATS secrets file readable by others: make it owner-only (chmod 600)",
                    setting=setting,
                    path=str(path),
                    mode=oct(stat.S_IMODE(status.st_mode)),
                )


def _check_secret_files(options: NatsOptions) -> None:
    """``LogError`` naming the setting if a file of secrets cannot be read or holds no key
    (nats-py would fail deep inside the connection, or wait forever on a creds file without
    a JWT). Neither the contents nor nkeys's message about them is shown."""
    files = options.secret_files()
    if len(files) > 1:
        raise LogError(f"set one of {' and '.join(files)}, not both: each names the user")
    for setting, path in files.items():
        where = f"{path} ({setting})"
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise LogError(f"cannot read {where}: {exc.strerror}") from None
        if setting == "STREAMER_NATS_CREDS_FILE":
            if _armoured(text, b"NATS USER JWT") is None:
                raise LogError(f"{where} holds no user JWT: not a NATS credentials file")
            seed = _armoured(text, b"USER NKEY SEED")
        else:
            seed = text.strip()
        if not _is_user_seed(seed):
            raise LogError(f"{where} holds no NKEY user seed")


def _armoured(text: bytes, label: bytes) -> bytes | None:
    """The line after ``-----BEGIN <label>-----`` in a credentials file."""
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1]):
        if b"BEGIN " + label in line:
            return lines[number + 1].strip() or None
    return None


def _is_user_seed(seed: bytes | None) -> bool:
    if not seed:
        return False
    try:
        keys = nkeys.from_seed(bytearray(seed))
    except (nkeys.NkeysError, ValueError):  # ValueError: base32, or a seed of the wrong length
        return False
    user: bool = keys.public_key.startswith(b"U")
    keys.wipe()
    return user


@contextlib.contextmanager
def failures(doing: str, client: Client) -> Iterator[None]:
    """Turn NATS's and JetStream's failures while ``doing`` into ``LogError`` (a full store
    into ``LogFullError``). While ``client`` reconnects, fail at once, before any request is
    made: nats-py keeps the reply slot of a request it could not send for good."""
    if not client.is_connected:
        raise LogError(f"{doing} failed: {RECONNECTING}")
    try:
        yield
    except nats.js.errors.APIError as exc:
        if exc.err_code in _FULL_CODES:
            raise LogFullError(f"{doing} failed: JetStream is full: {exc.description}") from None
        raise LogError(f"{doing} failed: {exc.description or exc}") from None
    except nats.errors.OutboundBufferLimitError:  # the connection broke on the way
        raise LogError(f"{doing} failed: {RECONNECTING}") from None
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
