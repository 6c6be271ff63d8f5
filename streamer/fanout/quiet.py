"""Whether the log is quiet: no records appended for a while.

A stream whose batch is not full sends it once the log has gone quiet (or its batch has waited
its longest): while records keep arriving, batches keep filling. "A while" is ``linger_secs``,
or four times the recent pace of appends when that is longer (a busy service on a busy machine
appends every few tens of milliseconds, and a gap of one pace is not yet a pause), but never
more than ``_PACE_CAP_SECS``. One timer serves every waiting stream, re-armed at most once per
quiet period while appends go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Quiet"]

_PACE_CAP_SECS = 0.5  # a longer gap between appends is a pause, not the pace of a busy log


class Quiet:
    def __init__(self, linger_secs: float) -> None:
        self._linger = linger_secs
        self._pace = 0.0  # moving average of the gaps between appends, seconds
        self._last = float("-inf")  # loop time of the last append
        self._waiting: set[Callable[[], None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def appended(self) -> None:
        now = asyncio.get_running_loop().time()
        gap = now - self._last
        if gap < _PACE_CAP_SECS:
            self._pace += (gap - self._pace) / 8
        self._last = now

    def is_quiet(self) -> bool:
        return asyncio.get_running_loop().time() - self._last >= self._period()

    def call_when_quiet(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the log is quiet (once; ``cancel`` takes it back)."""
        self._waiting.add(callback)
        self._arm()

    def cancel(self, callback: Callable[[], None]) -> None:
        self._waiting.discard(callback)

    def _period(self) -> float:
        return max(self._linger, min(4 * self._pace, _PACE_CAP_SECS))

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._last + self._period(), self._check)

    def _check(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        if not self.is_quiet():
            self._arm()
            return
        waiting, self._waiting = self._waiting, set()
        for callback in waiting:
            callback()
