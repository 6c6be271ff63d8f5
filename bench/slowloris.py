"""Half-sent requests against the daemon: how long until the service closes them, and how
``/health/live`` and ingest answer meanwhile.

Starts ``streamer run`` (``--source`` picks the checkout, default this one) under a soft
open-file limit of ``--nofile`` (the common 1,024), opens ``--connections`` connections that
each send half a request (half of them a head that never ends, half a whole head and part of
the body), then polls ``/health/live`` and posts a small ingest body every 0.2 s until every
half-sent connection is closed or ``--wait`` seconds pass. Prints how many were closed and
when, the slowest liveness and ingest answers, and the lines the service logged.

Run: ``python3 -m bench.slowloris [--connections 1500] [--nofile 1024] [--source DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.service import start_service
from schemas import Kind, Version, dumps
from streamer.simulate import Fleet


async def _probe(
    session: aiohttp.ClientSession, url: str, data: bytes | None, headers: dict[str, str]
) -> tuple[bool, float]:
    """One request (POST with ``data``, else GET): whether it succeeded, and how long it took."""
    sent = time.monotonic()
    try:
        async with session.request(
            "POST" if data else "GET", url, data=data, headers=headers
        ) as response:
            await response.read()
            ok = response.status in (200, 202)
    except (TimeoutError, aiohttp.ClientError):
        ok = False
    return ok, time.monotonic() - sent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--wait", type=float, default=90.0)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    token = "bench_" + secrets.token_urlsafe(24)
    body = dumps(Fleet(seed=5).event(), Kind.EVENT, Version.NEW)
    with tempfile.TemporaryDirectory() as tmp:
        daemon, url = await start_service(args.source, tmp, token, nofile=args.nofile)
        log_lines = 0

        async def count_lines() -> None:
            nonlocal log_lines
            assert daemon.stderr is not None
            while await daemon.stderr.readline():
                log_lines += 1

        counter = asyncio.create_task(count_lines())
        host, port = url.removeprefix("http://").rsplit(":", 1)
        head = (
            "POST /api/v1/ingest/events HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        )
        started = time.monotonic()
        closed_at: dict[str, list[float]] = {"head": [], "body": []}

        async def half_sent(index: int) -> None:
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                return
            if index % 2:
                writer.write((head + "X-Slow: ").encode())
            else:
                writer.write((head + "Content-Length: 1000\r\n\r\n").encode() + b'{"id": ')
            await writer.drain()
            await reader.read()  # until the service closes it
            closed_at["head" if index % 2 else "body"].append(time.monotonic() - started)
            writer.close()

        slow = [asyncio.create_task(half_sent(i)) for i in range(args.connections)]
        live_worst = ingest_worst = 0.0
        failures = 0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while time.monotonic() - started < args.wait and not all(t.done() for t in slow):
                ok, took = await _probe(session, url + "/health/live", None, headers)
                failures += not ok
                live_worst = max(live_worst, took)
                ok, took = await _probe(session, url + "/api/v1/ingest/events", body, headers)
                failures += not ok
                ingest_worst = max(ingest_worst, took)
                await asyncio.sleep(0.2)
        for task in slow:
            task.cancel()
        daemon.terminate()
        await daemon.wait()
        await counter
    heads, bodies = closed_at["head"], closed_at["body"]
    print(
        f"{args.connections} half-sent requests, soft file limit {args.nofile}:"
        f" closed by the service: {len(heads)} half heads (last after"
        f" {max(heads, default=float('nan')):.1f} s), {len(bodies)} half bodies (last after"
        f" {max(bodies, default=float('nan')):.1f} s);"
        f" slowest /health/live {live_worst * 1000:.0f} ms, slowest ingest"
        f" {ingest_worst * 1000:.0f} ms, {failures} failed; {log_lines} log lines"
    )


if __name__ == "__main__":
    asyncio.run(main())
