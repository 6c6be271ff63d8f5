"""Webhook (``RestAPI``) destination: each batch is one HTTP request.

With ``size`` 1 (the platform's "RestAPI", legacy ``api_type`` 1) the body is the one record as
a JSON object; with a larger ``size`` ("RestAPI Bulk") it is a JSON array of the batch's records.

Headers per API.md §6: ``Content-Type: application/json``, ``User-Agent`` ``TLD`` for ``old``
and ``DataStreamer/2.0`` otherwise, ``Accept: application/json``, ``Accept-Encoding: gzip,
deflate``, the stream's own headers, an ``Idempotency-Key`` stable across retries of the same
records, and, with a signing secret, the Standard Webhooks headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature``. 307 and 308 are followed with the method and
body kept (five hops at most); any other 3xx is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
from multidict import CIMultiDict

from connectors.base import Batch, FatalError, Rendering, SendResult
from connectors.http import (
    Client,
    Sessions,
    check_destination,
    error_for_exception,
    error_for_status,
)
from schemas import Version

__all__ = ["Webhook", "WebhookConfig"]

_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    version: Version = Version.NEW
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    size: int = 3000
    signing_secret: str | None = field(default=None, repr=False)
    allow_private: bool = False
    timeout_secs: float = 30.0
    sessions: Sessions | None = field(default=None, repr=False, compare=False)
    """Client sessions shared with other connectors (``None``: one of its own)."""

    def build(self) -> Webhook:
        """Check the destination and return the connector (``PrivateDestinationError``).

        The way in: the address check on the first hop is here (names are checked again when
        they resolve, and every redirect target before it is followed)."""
        check_destination(self.url, self.allow_private)
        return Webhook(self)


class Webhook:
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self.rendering = Rendering(config.version)
        self.max_batch = config.size
        self.linger_secs: float | None = None
        self.stable_batches = False
        self._client = Client(config.allow_private, config.timeout_secs, config.sessions)
        self._custom = CIMultiDict(config.headers)
        self._standard = CIMultiDict(
            {
                "Content-Type": "application/json",
                "User-Agent": "TLD" if config.version is Version.OLD else "DataStreamer/2.0",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
            }
        )
        secret = config.signing_secret
        self._key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None

    async def send(self, batch: Batch) -> SendResult:
        if self.max_batch == 1:
            (body,) = batch.payloads
        else:
            body = b"[" + b",".join(batch.payloads) + b"]"
        headers = CIMultiDict(self._custom)
        headers.update(self._standard)  # the stream's headers never replace these
        headers["Idempotency-Key"] = batch.key
        if self._key is not None:
            headers.update(self._signature(batch.key, body))
        url = self.config.url
        last_redirect = 308
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                async with self._client().request(
                    self.config.method, url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    if status in (307, 308) and "Location" in response.headers:
                        last_redirect = status
                        target = urljoin(url, response.headers["Location"])
                        _check_redirect(url, target)
                        check_destination(target, self.config.allow_private)
                        if _origin(target) != _origin(url):
                            for name in self._custom:  # may hold credentials for the first host
                                headers.popall(name, None)
                        url = target
                        continue
                    detail = (await response.content.read(300)).decode(errors="replace")
                    if 200 <= status < 300:
                        return SendResult(http_status=status)
                    raise error_for_status(status, response.headers, detail.strip())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise error_for_exception(exc) from None
        raise FatalError(f"more than {_MAX_REDIRECTS} redirects", last_redirect)

    async def healthcheck(self) -> None:
        """A webhook has no side-effect-free probe; the first send is the check (fail fast)."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def _signature(self, message_id: str, body: bytes) -> dict[str, str]:
        """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
        assert self._key is not None
        timestamp = str(int(time.time()))
        signed = f"{message_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _check_redirect(source: str, target: str) -> None:
    """Refuse a redirect from HTTPS down to plain HTTP: the records would travel in clear."""
    if urlsplit(source).scheme == "https" and urlsplit(target).scheme != "https":
        raise FatalError(f"refused a redirect from HTTPS to {target}")
