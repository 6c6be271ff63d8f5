"""``streamer.workers``: real spawned processes running standard-library functions, which need
no test module to be importable in the worker: ``os.getpid`` names the worker that answered
(and raises ``TypeError`` when given an argument), ``time.sleep`` holds it busy, ``os._exit``
kills it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

import pytest

from streamer.workers import Workers, WorkersUnavailable
from tests.e2e.harness import eventually


def _workers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "streamer-ingest"]


class _Lost:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_a_call_returns_the_result_or_raises_the_exception_and_the_worker_stays() -> None:
    pool = Workers(os.getpid, 1, 30)
    try:
        pid = await pool.run()
        assert pid != os.getpid()
        with pytest.raises(TypeError):
            await pool.run(1)
        assert await pool.run() == pid
        assert pool.failure is None
    finally:
        await pool.close(5)
    assert _workers() == []


async def test_a_worker_killed_while_idle_is_replaced_before_the_next_call() -> None:
    lost = _Lost()
    pool = Workers(os.getpid, 1, 30, on_lost=lost)
    try:
        first = await pool.run()
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: not any(p.pid == first and p.is_alive() for p in _workers()))
        second = await pool.run()
        assert second != first
        assert lost.count == 1
        assert pool.failure is None
    finally:
        await pool.close(5)


async def test_a_worker_killed_mid_call_is_replaced_and_the_call_sent_again() -> None:
    lost = _Lost()
    pool: Workers[object] = Workers(time.sleep, 1, 30, on_lost=lost)  # a call's result is checked
    try:
        task = asyncio.create_task(pool.run(1.0))
        [worker] = await eventually(_workers, what="the worker")
        os.kill(worker.pid or 0, signal.SIGKILL)
        assert await task is None  # slept in the new worker
        assert lost.count == 1
        assert [p.pid for p in _workers()] not in ([], [worker.pid])
    finally:
        await pool.close(5)


async def test_a_worker_that_dies_twice_in_a_row_makes_the_call_unavailable() -> None:
    lost = _Lost()
    pool = Workers(os._exit, 2, 30, on_lost=lost)
    try:
        with pytest.raises(WorkersUnavailable, match="died twice in a row"):
            await pool.run(3)
        assert lost.count == 2
        assert pool.failure == "the ingest worker died twice in a row"
    finally:
        await pool.close(5)


async def test_a_hung_worker_is_killed_at_the_deadline_and_the_next_call_runs() -> None:
    lost = _Lost()
    pool: Workers[object] = Workers(time.sleep, 1, 1.0, on_lost=lost)  # a call's result is checked
    try:
        with pytest.raises(WorkersUnavailable, match="within 1 s"):
            await pool.run(600)
        assert lost.count == 1
        assert pool.failure is not None
        assert await pool.run(0) is None
        assert pool.failure is None
    finally:
        await pool.close(5)


async def test_a_closed_pool_refuses_calls_and_its_workers_are_gone() -> None:
    pool = Workers(os.getpid, 2, 30)
    await pool.run()
    await pool.close(5)
    assert _workers() == []
    with pytest.raises(WorkersUnavailable):
        await pool.run()
