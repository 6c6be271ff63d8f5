"""Who is woken by appends: a worker waiting for one more record of its organisation, or for
enough of them to fill a batch, and no one else."""

from __future__ import annotations

import asyncio

from streamer.fanout.arrivals import Arrivals


async def test_a_waiter_for_one_more_record_wakes_on_its_organisations_next_append() -> None:
    arrivals = Arrivals()
    arrivals.appended([1, 2, 2])
    one, two = asyncio.Event(), asyncio.Event()
    arrivals.wait(1, arrivals.count(1) + 1, one)
    arrivals.wait(2, arrivals.count(2) + 1, two)
    arrivals.appended([3, 3, 2])
    assert (one.is_set(), two.is_set()) == (False, True)
    arrivals.appended_counts({1: 4})
    assert one.is_set()
    assert (arrivals.count(1), arrivals.count(2), arrivals.count(3)) == (5, 3, 2)


async def test_a_waiter_for_many_records_wakes_once_its_organisation_has_them_all() -> None:
    """However the other organisations' records interleave, and whatever the other waiters
    wait for, each is woken on the append that brings its count, not before."""
    arrivals = Arrivals()
    waiters = {organisation: asyncio.Event() for organisation in range(5)}
    wanted = {organisation: 3 + 7 * organisation for organisation in waiters}
    for organisation, event in waiters.items():
        arrivals.wait(organisation, wanted[organisation], event)
    for step in range(200):
        organisations = [(step * 3 + i) % 6 for i in range(step % 4 + 1)]
        arrivals.appended(organisations)
        for organisation, event in waiters.items():
            assert event.is_set() == (arrivals.count(organisation) >= wanted[organisation])
    assert all(event.is_set() for event in waiters.values())


async def test_a_cancelled_waiter_is_not_woken_and_a_reached_count_wakes_at_once() -> None:
    arrivals = Arrivals()
    few, many = asyncio.Event(), asyncio.Event()
    arrivals.wait(1, 1, few)
    arrivals.wait(1, 3, many)
    arrivals.cancel(1, few)
    arrivals.cancel(1, many)
    arrivals.appended([1, 1, 1, 1])
    assert not few.is_set()
    assert not many.is_set()
    arrivals.wait(1, 4, many)
    assert many.is_set()
