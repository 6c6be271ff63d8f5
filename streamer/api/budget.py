"""Ingest bytes in flight: bodies being received, inflated and parsed hold at most
``max_inflight_ingest_bytes`` between them; a request that would go beyond gets 503 with
``Retry-After`` before its body is read. One request alone always fits, so a body up to
``max_body_bytes`` is never refused for its size by this budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from streamer.api.errors import ApiError

__all__ = ["IngestBudget", "Reservation"]

_RETRY_AFTER_SECS = "1"


class IngestBudget:
    """A count of ingest bytes in flight, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @contextmanager
    def reserve(self, size: int) -> Iterator[Reservation]:
        """Hold ``size`` bytes (more with ``Reservation.grow``) until the block ends; 503 when
        the budget cannot give them."""
        reservation = Reservation(self)
        try:
            reservation.grow(size)
            yield reservation
        finally:
            self.used -= reservation.size

    def _take(self, size: int) -> None:
        if self.used and self.used + size > self.limit:
            raise ApiError(
                503,
                f"ingest is holding {self.used} bytes of bodies in flight (at most"
                f" {self.limit}); send again shortly",
                headers={"Retry-After": _RETRY_AFTER_SECS},
            )
        self.used += size


class Reservation:
    """The bytes one request holds of an ``IngestBudget``."""

    def __init__(self, budget: IngestBudget) -> None:
        self._budget = budget
        self.size = 0

    def grow(self, size: int) -> None:
        self._budget._take(size)
        self.size += size
