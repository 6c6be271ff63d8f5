"""Woken stream workers go on a few per turn of the event loop.

Many workers are woken at once when the log goes quiet or when their batches reach their
longest wait together (their first records came in the same appends). Going on together,
they move in lockstep, one step each per turn: every one reads its batch before the first
opens its connection, and the first request leaves only once all have read. With 1,000
streams the destinations then waited about 0.6 s for the first request. Let through
``per_turn`` at a time, the first requests leave at once and the destinations work while
the rest are read.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Turns"]


class Turns:
    def __init__(self, per_turn: int = 32) -> None:
        self._per_turn = per_turn
        self._passed = 0  # callers let through in this turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._next: asyncio.Handle | None = None

    async def take(self) -> None:
        """Return in this turn if fewer than ``per_turn`` callers did, or else in a later
        one, in the order of calling."""
        if self._passed < self._per_turn and not self._waiting:
            self._passed += 1
            self._schedule()
            return
        waiting = asyncio.get_running_loop().create_future()
        self._waiting.append(waiting)
        self._schedule()
        await waiting

    def _schedule(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._next = None
        self._passed = 0
        while self._waiting and self._passed < self._per_turn:
            waiting = self._waiting.popleft()
            if not waiting.done():  # its caller was cancelled meanwhile
                waiting.set_result(None)
                self._passed += 1
        if self._waiting or self._passed:  # the next turn lets more through
            self._schedule()
