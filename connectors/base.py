"""The connector contract: what every destination implements, and its error tree.

A connector is built from a stream's validated destination config. The delivery engine hands
it batches of records already rendered the way it asked (``Connector.rendering``) and reads
back which records the destination took:

    DeliveryError            a batch (or part of one) could not be delivered
     ├── RetryableError      worth another try: network trouble, timeouts, 408, 429, 5xx;
     │                       ``retry_after`` carries the destination's own wait, if it said one
     └── FatalError          retrying cannot help: a refused request, bad credentials; the
          │                  stream goes to Error
          └── DestinationMissing  the destination is not there (404/410, a Kinesis stream or
                             S3 bucket that does not exist): fatal on the first send after a
                             create or restart; after a stream has delivered, the engine
                             retries it for the retry window (it may come back)

Library errors (aiohttp, botocore) never cross this boundary: each connector maps them here.
A partial failure is not an exception: ``send`` returns the positions to retry and the
positions the destination refused for good (dead letters), and the rest count as delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from schemas import Shape, Version

__all__ = [
    "Batch",
    "Connector",
    "DeliveryError",
    "DestinationMissing",
    "FatalError",
    "Form",
    "Rendering",
    "RetryableError",
    "SendResult",
]


class DeliveryError(Exception):
    """A delivery that failed; ``http_status`` is the destination's answer, if it gave one."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class RetryableError(DeliveryError):
    """Worth another try after a backoff, or after ``retry_after`` seconds when given."""

    def __init__(
        self, message: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, http_status)
        self.retry_after = retry_after


class FatalError(DeliveryError):
    """Another try cannot succeed until the configuration or the destination is fixed."""


class DestinationMissing(FatalError):
    """The destination does not exist (any more): a deleted stream or bucket, a 404 or 410."""


class Form(StrEnum):
    """How each record of a batch is handed over."""

    JSON = "json"  # the record rendered in the stream's version and shape, as JSON bytes
    CSV = "csv"  # one CSV row (with its line end) in the stream's version


@dataclass(frozen=True, slots=True)
class Rendering:
    """What a connector wants its records as; batches are rendered once per distinct value."""

    version: Version
    shape: Shape = Shape.FULL
    form: Form = Form.JSON


@dataclass(frozen=True, slots=True)
class Batch:
    """Records for one send, in log order.

    ``key`` is stable across retries of the same records (an idempotency key; S3 object keys
    derive from it). ``kinds`` gives each record's kind (``"event"``/``"usage"``), ``offsets``
    its position in the log.
    """

    key: str
    payloads: Sequence[bytes]
    kinds: Sequence[str]
    offsets: Sequence[int]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the destination did with a batch: positions to retry, positions refused for good,
    and the HTTP status it answered with, where there is one."""

    http_status: int | None = None
    retry: Sequence[int] = ()
    rejected: Sequence[tuple[int, str]] = field(default_factory=tuple)


class Connector(Protocol):
    """One stream's destination.

    ``max_batch`` is the most records one ``send`` takes (the stream's ``size``, S3's
    ``flush_size``); ``linger_secs``, when set, is how long a batch may wait to fill before it is
    sent anyway (S3's ``rotate_interval``); ``None`` leaves it to the service's setting.
    ``stable_batches`` asks that a batch sent again after a crash hold exactly the records it
    held the first time (S3 names its objects after the batch, so a re-send overwrites).
    """

    rendering: Rendering
    max_batch: int
    linger_secs: float | None
    stable_batches: bool

    async def send(self, batch: Batch) -> SendResult:
        """Deliver ``batch``; raise ``RetryableError``/``FatalError`` if none of it went."""
        ...

    async def healthcheck(self) -> None:
        """Check the destination is reachable and accepts us; raise ``DeliveryError`` if not."""
        ...

    async def aclose(self) -> None:
        """Release connections; the connector is not used afterwards."""
        ...
