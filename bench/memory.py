"""Peak memory of the daemon under concurrent large ingest bodies.

Starts ``streamer run`` (``--source`` picks the checkout to run, default this one) on a fresh
data directory, posts ``--bodies`` NDJSON bodies of about ``--mib`` MiB each at once (a body
answered 503 is sent again after its ``Retry-After``), and prints the answers, the wall time
and the peak resident memory (``VmHWM``) of the service process and of its ingest workers.

Run: ``python3 -m bench.memory [--bodies 16] [--mib 15] [--source DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import secrets
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.service import start_service
from schemas import Kind, Version, dumps
from streamer.simulate import Fleet


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def body_of(mib: float) -> tuple[bytes, int]:
    fleet = Fleet(seed=3)
    lines = []
    size = 0
    while size < mib * 1024 * 1024:
        line = dumps(fleet.event(), Kind.EVENT, Version.NEW)
        lines.append(line)
        size += len(line) + 1
    return b"\n".join(lines), len(lines)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=16)
    parser.add_argument("--mib", type=float, default=15.0)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    body, records = body_of(args.mib)
    token = "bench_" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        daemon, url = await start_service(args.source, tmp, token)
        assert daemon.stderr is not None
        drain = asyncio.create_task(daemon.stderr.read())
        statuses: collections.Counter[int] = collections.Counter()
        worker_peaks: dict[int, int] = {}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

        async def post(session: aiohttp.ClientSession) -> None:
            while True:
                async with session.post(
                    url + "/api/v1/ingest/events", data=body, headers=headers
                ) as response:
                    await response.read()
                    statuses[response.status] += 1
                    if response.status != 503:
                        return
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

        async def watch_workers() -> None:
            while True:
                for child in children(daemon.pid):
                    with contextlib.suppress(OSError):  # a process that just ended
                        worker_peaks[child] = peak_kib(child)
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_workers())
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(post(session) for _ in range(args.bodies)))
        elapsed = time.monotonic() - started
        main_peak = peak_kib(daemon.pid)
        watcher.cancel()
        daemon.terminate()
        await daemon.wait()
        drain.cancel()
    print(
        f"{args.bodies} bodies of {len(body) / 2**20:.1f} MiB ({records} records each) at once:"
        f" answers {dict(sorted(statuses.items()))}, {elapsed:.1f} s;"
        f" peak RSS service {main_peak / 1024:.0f} MiB,"
        f" workers {sum(worker_peaks.values()) / 1024:.0f} MiB"
        f" ({len(worker_peaks)} processes)"
    )


if __name__ == "__main__":
    asyncio.run(main())
