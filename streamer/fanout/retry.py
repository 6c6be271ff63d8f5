"""When to try a failed send again: exponential backoff with full jitter, within a window."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Wait ``uniform(0, min(cap, base * 2**attempt))``, or the destination's ``Retry-After``
    when it is longer; give up once ``window_secs`` have passed since the first failure."""

    window_secs: float = 60.0
    base_secs: float = 0.5
    cap_secs: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap_secs, self.base_secs * 2**attempt))
        return max(backoff, retry_after or 0.0)
