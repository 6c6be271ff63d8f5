"""Woken workers go on a few per turn of the event loop, in the order they asked, and one
that is cancelled while it waits holds back no one."""

from __future__ import annotations

import asyncio

from streamer.fanout.turns import Turns


class _Clock:
    """Counts the turns of the event loop."""

    def __init__(self) -> None:
        self.turn = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def test_callers_go_on_at_most_per_turn_at_a_time_in_their_order() -> None:
    turns, clock = Turns(per_turn=4), _Clock()
    went: list[tuple[int, int]] = []  # (caller, turn)

    async def caller(index: int) -> None:
        await turns.take()
        went.append((index, clock.turn))

    await asyncio.gather(*(caller(index) for index in range(30)))
    clock.stop()
    assert [index for index, _ in went] == list(range(30))
    per_turn: dict[int, int] = {}
    for _, turn in went:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) == 4, per_turn
    assert len(per_turn) >= 30 // 4


async def test_a_caller_cancelled_while_waiting_takes_no_ones_place() -> None:
    turns = Turns(per_turn=1)
    callers = [asyncio.ensure_future(turns.take()) for _ in range(4)]
    await asyncio.sleep(0)  # the first went on, the others wait for later turns
    assert [caller.done() for caller in callers] == [True, False, False, False]
    callers[1].cancel()
    done, _ = await asyncio.wait(callers[2:], timeout=5)
    assert set(done) == set(callers[2:])
    assert callers[1].cancelled()


async def test_a_lone_caller_does_not_wait() -> None:
    turns = Turns(per_turn=2)
    clock = _Clock()
    before = clock.turn
    for _ in range(2):
        await turns.take()
    clock.stop()
    assert clock.turn == before
