"""Whether the log is quiet: no records on their way in and none appended for ``linger_secs``.

A stream whose batch is not full sends it once the log is quiet (or once the batch has waited
its longest): while records keep arriving, batches keep filling. "On their way in" are the
ingest requests being read and stored (``receiving``). One timer serves every waiting stream,
re-armed at most once per ``linger_secs`` while appends go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

__all__ = ["Quiet"]


class Quiet:
    def __init__(self, linger_secs: float) -> None:
        self._linger = linger_secs
        self._receiving = 0  # ingest requests in progress
        self._last = float("-inf")  # loop time of the last append, or of the last request's end
        self._waiting: set[Callable[[], None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Around an ingest request: records are on their way in."""
        self._receiving += 1
        try:
            yield
        finally:
            self._receiving -= 1
            self.appended()

    def appended(self) -> None:
        self._last = asyncio.get_running_loop().time()
        self._arm()

    def is_quiet(self) -> bool:
        elapsed = asyncio.get_running_loop().time() - self._last
        return self._receiving == 0 and elapsed >= self._linger

    def call_when_quiet(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the log is quiet (once; ``cancel`` takes it back)."""
        self._waiting.add(callback)
        self._arm()

    def cancel(self, callback: Callable[[], None]) -> None:
        self._waiting.discard(callback)

    def _arm(self) -> None:
        if self._timer is None and self._waiting and self._receiving == 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._last + self._linger, self._check)

    def _check(self) -> None:
        self._timer = None
        if not self.is_quiet():
            self._arm()  # appended meanwhile; while receiving, the request's end re-arms
            return
        waiting, self._waiting = self._waiting, set()
        for callback in waiting:
            callback()
