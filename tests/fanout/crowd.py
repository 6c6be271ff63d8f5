"""A crowd of streams over shared pages while records keep arriving, with a watchdog on the
event loop.

Run ``python -m tests.fanout.crowd [--streams N] [--runs N]``: each run starts ``--streams``
streams over three organisations on a fresh SQLite log, appends records in many small groups
while they deliver, and waits until every stream has every record of its organisation. A
heartbeat task ticks on the event loop; a watchdog thread ends the process with exit status 3
and every thread's stack when the heartbeat stops for ``STALL_SECS`` (the loop stopped
turning), so a live-lock fails instead of hanging. Exit status 0: every run delivered
everything.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from streamer.log.sqlite import SqliteLog
from tests.fanout.doubles import Harness, wait_for

STALL_SECS = 30.0
APPENDS = 60


class Heartbeat:
    """Ticks on the event loop; a thread watches that it keeps ticking."""

    def __init__(self) -> None:
        self.ticks = 0
        self._last = time.monotonic()
        self._stop = threading.Event()

    async def beat(self) -> None:
        while True:
            self.ticks += 1
            self._last = time.monotonic()
            await asyncio.sleep(0.01)

    def watch(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last > STALL_SECS:
                print(f"the event loop stopped turning for {STALL_SECS} s", file=sys.stderr)
                faulthandler.dump_traceback(all_threads=True)
                os._exit(3)

    def stop(self) -> None:
        self._stop.set()


async def crowd(data_dir: Path, streams: int) -> int:
    """One run: ``streams`` streams, records appended while they deliver; returns how many
    records were delivered in all."""
    log = await SqliteLog.open(data_dir)
    h = Harness(log)
    try:
        names = [f"s{i}" for i in range(streams)]
        for i, name in enumerate(names):
            await h.create(name, organisation=1 + i % 3, size=1 + i % 50)
        for round_ in range(APPENDS):
            await h.append(events=1 + round_ % 40, usage=round_ % 30)
            if round_ % 4 == 0:
                await asyncio.sleep(0)
        wanted = {org: [s.offset for s in h.stored if s.organisation == org] for org in (1, 2, 3)}

        def done() -> bool:
            return all(h[name].offsets == wanted[1 + i % 3] for i, name in enumerate(names))

        await wait_for(done, timeout=120.0)
        return sum(len(h[name].offsets) for name in names)
    finally:
        await h.fanout.stop(5.0)
        await log.aclose()


async def main(streams: int, runs: int) -> None:
    heartbeat = Heartbeat()
    watchdog = threading.Thread(target=heartbeat.watch, daemon=True)
    watchdog.start()
    beating = asyncio.create_task(heartbeat.beat())
    started = time.monotonic()
    try:
        for run in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                delivered = await crowd(Path(tmp), streams)
            print(f"run {run + 1}/{runs}: {streams} streams, {delivered} records delivered")
    finally:
        beating.cancel()
        heartbeat.stop()
    print(
        f"{runs} runs of {streams} streams in {time.monotonic() - started:.1f} s, "
        f"{heartbeat.ticks} heartbeats"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.streams, args.runs))
