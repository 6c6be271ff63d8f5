"""The shutdown budget: ``STREAMER_SHUTDOWN_TIMEOUT_SECS`` is the whole time from the signal
to the end of the shutdown, one deadline shared by its steps (``streamer.app``):

1. HTTP drain: in-flight requests get ``HTTP_DRAIN_SHARE`` of the budget to finish, then are
   cancelled (aiohttp waits that long again, at most, for a cancelled handler to return);
2. ingest workers: idle by then, they get at most ``CLOSE_SHARE`` of the budget to exit;
3. delivery drain: in-flight sends get whatever is left, less ``CLOSE_SHARE``, then are
   cancelled (their records stay unacknowledged and are sent again after a restart);
4. connectors and the log close in the share kept back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["CLOSE_SHARE", "HTTP_DRAIN_SHARE", "ShutdownBudget", "http_drain_secs"]

HTTP_DRAIN_SHARE = 0.25
CLOSE_SHARE = 0.1


def http_drain_secs(total_secs: float) -> float:
    """How long in-flight HTTP requests may run once the shutdown has begun."""
    return total_secs * HTTP_DRAIN_SHARE


@dataclass(frozen=True, slots=True)
class ShutdownBudget:
    """``total_secs`` from ``started`` (``time.monotonic``, taken when the signal came)."""

    total_secs: float
    started: float = field(default_factory=time.monotonic)

    def left_secs(self) -> float:
        return max(0.0, self.started + self.total_secs - time.monotonic())

    def close_secs(self) -> float:
        """For one closing step: its share, or what is left if that is less."""
        return min(self.total_secs * CLOSE_SHARE, self.left_secs())

    def delivery_drain_secs(self) -> float:
        """What is left of the budget, less the share kept back for closing."""
        return max(0.0, self.left_secs() - self.total_secs * CLOSE_SHARE)
