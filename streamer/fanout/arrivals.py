"""How many records of each organisation were appended, and which workers wait for them.

The fan-out hears of every append; a stream worker waits for a number of its organisation's
records (one more when it has nothing to send; enough to fill its batch while it lingers).
What an append costs here does not grow with the number of organisations it holds or of
workers waiting: the counting is one C call (``Counter.update``); the workers waiting for any
record are found by one set intersection; the workers waiting for a batch to fill are looked
at only once enough records arrived, of any organisation, that one of them may be full.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

__all__ = ["Arrivals"]


class Arrivals:
    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()  # records appended, by organisation
        self._total = 0  # records appended, all organisations
        self._any: dict[int, set[asyncio.Event]] = {}  # waiting for one more, by organisation
        self._many: dict[asyncio.Event, tuple[int, int]] = {}  # waiting for an organisation's
        # count to reach a number
        self._look_at = sys.maxsize  # the total before which no one of _many can be satisfied

    def count(self, organisation: int) -> int:
        """How many records of ``organisation`` were appended so far."""
        return self._counts[organisation]

    def appended(self, organisations: Sequence[int]) -> None:
        """Records were appended, of these organisations (one item per record)."""
        self._counts.update(organisations)
        self._total += len(organisations)
        self._wake(organisations)

    def appended_counts(self, counts: Mapping[int, int]) -> None:
        """``counts[organisation]`` records were appended."""
        self._counts.update(counts)
        self._total += sum(counts.values())
        self._wake(counts.keys())

    def wait(self, organisation: int, count: int, waiter: asyncio.Event) -> None:
        """Set ``waiter`` once ``count`` records of ``organisation`` were appended (at once if
        they were); ``cancel`` takes it back."""
        missing = count - self._counts[organisation]
        if missing <= 0:
            waiter.set()
        elif missing == 1:
            self._any.setdefault(organisation, set()).add(waiter)
        else:
            self._many[waiter] = organisation, count
            self._look_at = min(self._look_at, self._total + missing)

    def cancel(self, organisation: int, waiter: asyncio.Event) -> None:
        waiters = self._any.get(organisation)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._any[organisation]
        self._many.pop(waiter, None)

    def _wake(self, organisations: Collection[int]) -> None:
        if self._any:
            for organisation in self._any.keys() & set(organisations):
                for waiter in self._any.pop(organisation):
                    waiter.set()
        if self._total >= self._look_at:
            self._look()

    def _look(self) -> None:
        """Wake those of ``_many`` whose count was reached; note when to look again."""
        counts, look_at = self._counts, sys.maxsize
        for waiter, (organisation, count) in list(self._many.items()):
            missing = count - counts[organisation]
            if missing <= 0:
                del self._many[waiter]
                waiter.set()
            else:
                look_at = min(look_at, self._total + missing)
        self._look_at = look_at
