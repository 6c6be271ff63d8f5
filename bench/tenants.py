"""Many organisations, one service: the same records over 1, 100 and 1,000 organisations.

Run: ``python3 -m bench.tenants [--records N] [--organisations 1,100,1000] [--write]``.

For each organisation count, a fresh daemon (``streamer run``, ``STREAMER_SYNC=normal``) gets
one Webhook stream per organisation (``size`` 3000, all to one receiver, ``bench.receiver``,
each at its own path), then the same ``--records`` event records, their organisation ids dealt
round-robin, in 500-record NDJSON POSTs with 4 in flight through a platform token. Measured
from the first POST to the last record at the receiver: records/s end to end, the daemon's
CPU seconds (its ingest worker processes included) per record, and the records per webhook
request. The 1-organisation run is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.e2e import Daemon, free_port, receiver_stats, wait_records, wait_until_up
from bench.report import write_section
from schemas import Kind, Version, dumps
from streamer.simulate import Fleet

PER_REQUEST = 500
IN_FLIGHT = 4
SIZE = 3000


def bodies(count: int, organisations: int) -> list[bytes]:
    """NDJSON bodies of ``count`` event records, organisations 1..``organisations`` dealt
    round-robin; apart from that the same records for every organisation count."""
    fleet = Fleet(seed=11, organisations=1)
    lines = []
    for index in range(count):
        record = fleet.event()
        record["organisation"]["id"] = 1 + index % organisations
        lines.append(dumps(record, Kind.EVENT, Version.NEW))
    return [b"\n".join(lines[i : i + PER_REQUEST]) for i in range(0, count, PER_REQUEST)]


async def post_all(
    session: aiohttp.ClientSession, url: str, payloads: list[bytes], headers: dict[str, str]
) -> None:
    queue = list(reversed(payloads))

    async def worker() -> None:
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def create_streams(
    session: aiohttp.ClientSession, daemon: Daemon, receiver: str, organisations: int
) -> None:
    auth = {"Authorization": f"Bearer {daemon.token}"}
    for organisation in range(1, organisations + 1):
        body = {
            "name": f"org {organisation}",
            "data_stream_type": {"id": 3},
            "destination": {
                "connection_type": "RestAPI",
                "credentials": {"url": f"{receiver}/hook/{organisation}", "size": SIZE},
            },
            "organisation": {"id": organisation},
        }
        url = f"{daemon.url}/api/v2/data_stream"
        async with session.post(url, json=body, headers=auth) as response:
            if response.status != 201:
                raise RuntimeError(f"create stream: {response.status} {await response.text()}")


async def run(
    session: aiohttp.ClientSession, receiver: str, records: int, organisations: int
) -> dict[str, float]:
    payloads = bodies(records, organisations)
    with tempfile.TemporaryDirectory() as data:
        daemon = Daemon(Path(data), secrets.token_urlsafe(32), STREAMER_SYNC="normal")
        try:
            await wait_until_up(session, f"{daemon.url}/health/ready")
            await create_streams(session, daemon, receiver, organisations)
            await session.post(f"{receiver}/reset")
            headers = {
                "Authorization": f"Bearer {daemon.token}",
                "Content-Type": "application/x-ndjson",
            }
            cpu_before = daemon.cpu_secs()
            started = time.perf_counter()
            await post_all(session, f"{daemon.url}/api/v1/ingest/events", payloads, headers)
            await wait_records(session, receiver, records)
            elapsed = time.perf_counter() - started
            cpu = daemon.cpu_secs() - cpu_before
            stats = await receiver_stats(session, receiver)
        finally:
            daemon.stop()
    return {
        "rate": records / elapsed,
        "cpu_secs": cpu,
        "cpu_us": cpu / records * 1e6,
        "per_request": stats["records"] / stats["requests"],
        "duplicates": stats["records"] - stats["unique"],
    }


async def bench(args: argparse.Namespace) -> str:
    counts = [int(n) for n in args.organisations.split(",")]
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)])
    results: dict[int, dict[str, float]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{receiver}/stats")
            for count in counts:
                results[count] = await run(session, receiver, args.records, count)
                print(f"{count} organisations: {results[count]}", file=sys.stderr)
    finally:
        process.terminate()
        process.wait()
    base = results[counts[0]]
    rows = [
        f"| {count:,} | {r['rate']:,.0f} | {r['rate'] / base['rate']:.2f}× | {r['cpu_secs']:.1f} s"
        f" | {r['cpu_us']:.0f} µs | {r['cpu_us'] / base['cpu_us']:.2f}× | {r['per_request']:,.0f}"
        f" | {r['duplicates']:.0f} |"
        for count, r in results.items()
    ]
    return "\n".join(
        [
            "## Many organisations: the same records over 1 to 1,000 (`bench/tenants.py`)",
            "",
            f"Command: `python3 -m bench.tenants --records {args.records}"
            f" --organisations {args.organisations} --write` — ~750-byte event records, their"
            f" organisations dealt round-robin, {PER_REQUEST} per NDJSON POST, {IN_FLIGHT} in"
            f" flight; one Webhook stream per organisation (size {SIZE}) to one receiver;"
            " `STREAMER_SYNC=normal`, default linger (20 ms); daemon, receiver and load generator"
            " are separate processes on the same 2-core machine. Targets at 1,000 organisations:"
            " end to end ≥ 0.8× and CPU per record ≤ 1.25× of the 1-organisation run.",
            "",
            "| organisations / streams | end to end, records/s | vs 1 | daemon CPU"
            " | CPU per record | vs 1 | records per webhook request | duplicates |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--organisations", default="1,100,1000")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    table = asyncio.run(bench(args))
    print(table)
    if args.write:
        write_section("tenants", table)


if __name__ == "__main__":
    main()
