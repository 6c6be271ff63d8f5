"""KeenIO destination: the batch events API with its per-event results.

Each request is ``POST {base_url}/3.0/projects/{project_id}/events`` with the body
``{"<collection_name>": [<record>, ...]}`` of at most ``size`` records and the write key in
``Authorization``. Records arrive rendered in the stream's version and KeenIO's shape
(FORMATS.md §3.3: the reduced shape for ``old``/``migrated``, the full one for ``new``).

Keen answers a batch with one result per event, in order: ``{"<collection_name>":
[{"success": true}, {"success": false, "error": {"name": ..., "description": ...}}, ...]}``.

Guarantees:

- Only the events Keen did not take are reported, each at its position in the batch: those it
  refused as invalid (an error named ``Invalid…Error``, the reason being Keen's name and
  description) as ``rejected``, never sent again; any other failure as ``retry``. Events Keen
  took are never part of ``retry``. An answer without a result for an event (a short or
  unreadable 2xx body) puts that event in ``retry``: at least once, never lost.
- ``InvalidCollectionNameError`` concerns the stream's config, not a record: ``FatalError``.
- 413 (events too large) splits the request in halves and sends both; a single event Keen
  finds too large on its own is ``rejected``.
- 401/403 raise ``FatalError`` saying "invalid write key"; other 4xx raise ``FatalError``;
  408, 429 and 5xx raise ``RetryableError`` with ``Retry-After`` honoured. When such a failure
  stops a send after some requests went, the rest are returned as ``retry`` instead.
- The write key never appears in a message, a ``repr`` or a redirect to another host (only
  same-origin 307/308 redirects are followed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from connectors.base import Batch, FatalError, Rendering, RetryableError, SendResult
from connectors.http import (
    Client,
    Sessions,
    check_destination,
    error_for_status,
    post_within_origin,
)
from schemas import MalformedRecord, Shape, Version, loads
from schemas.render import to_json

__all__ = ["Keen", "KeenConfig"]

DEFAULT_BASE_URL: Final = "https://api.keen.io"
_CONFIG_ERRORS: Final = frozenset({"InvalidCollectionNameError"})


@dataclass(frozen=True, slots=True)
class KeenConfig:
    """A KeenIO destination: ``size`` records per request (API.md §3, 1–10000)."""

    project_id: str
    write_key: str = field(repr=False)
    collection_name: str
    version: Version
    size: int = 3000
    base_url: str = DEFAULT_BASE_URL
    allow_private: bool = False
    timeout_secs: float = 30.0
    sessions: Sessions | None = field(default=None, repr=False, compare=False)
    """Client sessions shared with other connectors (``None``: one of its own)."""

    @property
    def events_url(self) -> str:
        project = quote(self.project_id, safe="")
        return f"{self.base_url.rstrip('/')}/3.0/projects/{project}/events"

    def build(self) -> Keen:
        """Check the config and the destination and return the connector (``ValueError``,
        ``PrivateDestinationError``)."""
        if not self.project_id:
            raise ValueError("project_id is required")
        if not self.collection_name:
            raise ValueError("collection_name is required")
        key = self.write_key
        if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise ValueError("write_key must be a non-empty printable ASCII string without spaces")
        if not 1 <= self.size <= 10_000:
            raise ValueError(f"size must be between 1 and 10000, not {self.size}")
        check_destination(self.events_url, self.allow_private)
        return Keen(self)


Entry = tuple[int, bytes]
"""One record of a request: its position in the batch and its JSON bytes."""


@dataclass(slots=True)
class _Progress:
    """What the requests of one ``send`` achieved so far."""

    delivered: set[int] = field(default_factory=set)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    status: int | None = None


class Keen:
    """Sends batches to Keen's batch events API; see the module docstring."""

    def __init__(self, config: KeenConfig) -> None:
        self.config = config
        self.rendering = Rendering(config.version, Shape.KEEN)
        self.max_batch = config.size
        self.linger_secs: float | None = None
        self.stable_batches = False
        self._client = Client(config.allow_private, config.timeout_secs, config.sessions)
        self._prefix = b"{" + to_json(config.collection_name) + b":["

    async def send(self, batch: Batch) -> SendResult:
        """The batch in requests of ``size`` records; Keen's per-event verdicts sorted out."""
        entries = list(enumerate(batch.payloads))
        size = self.config.size
        progress = _Progress()
        try:
            for start in range(0, len(entries), size):
                await self._post_chunk(entries[start : start + size], progress)
        except RetryableError as error:
            if not progress.delivered:
                raise
            answered = progress.delivered | set(progress.retry) | {p for p, _ in progress.rejected}
            unsent = [p for p in range(len(entries)) if p not in answered]
            retry = sorted([*progress.retry, *unsent])
            return SendResult(error.http_status, retry=retry, rejected=progress.rejected)
        return SendResult(progress.status, retry=progress.retry, rejected=progress.rejected)

    async def healthcheck(self) -> None:
        """Keen has no side-effect-free check of a write key; the first send is the check."""

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post_chunk(self, chunk: Sequence[Entry], progress: _Progress) -> None:
        """Send one request, in halves while Keen answers 413, and sort its per-event results."""
        body = self._prefix + b",".join(payload for _, payload in chunk) + b"]}"
        status, answer = await self._post(body)
        if status == 413:
            if len(chunk) == 1:
                progress.rejected.append((chunk[0][0], "larger than KeenIO accepts (413)"))
                return
            half = len(chunk) // 2
            await self._post_chunk(chunk[:half], progress)
            await self._post_chunk(chunk[half:], progress)
            return
        progress.status = status
        results = self._results(answer)
        for index, (position, _) in enumerate(chunk):
            result = results[index] if index < len(results) else None
            if not isinstance(result, dict):
                progress.retry.append(position)  # no verdict for this event: send it again
            elif result.get("success") is True:
                progress.delivered.add(position)
            else:
                name, description = _error(result)
                if name in _CONFIG_ERRORS:
                    raise FatalError(f"KeenIO refused the collection name: {description}", status)
                if name.startswith("Invalid") and name.endswith("Error"):
                    progress.rejected.append((position, f"{name}: {description}"))
                else:
                    progress.retry.append(position)

    def _results(self, answer: bytes) -> list[Any]:
        """The per-event results of a 2xx answer; empty when the answer holds none."""
        try:
            document = loads(answer)
        except MalformedRecord:
            return []
        results = document.get(self.config.collection_name) if isinstance(document, dict) else None
        return results if isinstance(results, list) else []

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        """POST a batch; the 2xx or 413 status and the answer, or raise the error it means."""
        headers = {
            "Authorization": self.config.write_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        answer = await post_within_origin(self._client(), self.config.events_url, body, headers)
        status = answer.status
        if 200 <= status < 300 or status == 413:
            return status, answer.body
        if status in (401, 403):
            raise FatalError(f"invalid write key: KeenIO answered {status}", status)
        detail = answer.body.decode(errors="replace").strip()
        raise error_for_status(
            status, answer.headers, detail.replace(self.config.write_key, "****")
        )


def _error(result: dict[str, Any]) -> tuple[str, str]:
    """Keen's error name and description of a failed event (``"UnknownError"`` if absent)."""
    error = result.get("error")
    if not isinstance(error, dict):
        return "UnknownError", "no error given"
    name, description = error.get("name"), error.get("description")
    return (
        name if isinstance(name, str) and name else "UnknownError",
        description if isinstance(description, str) else "",
    )
