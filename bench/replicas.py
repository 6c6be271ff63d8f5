"""Replicas on JetStream: ingest → NATS JetStream → Webhook with 1, 2 and 3 ``streamer run``
replicas on one ``nats-server``, beside the embedded SQLite service on the same records.

Run: ``python3 -m bench.replicas [--records N] [--kill-records N] [--write]``.

Every case starts fresh: a ``nats-server -js`` on file storage in a temporary directory (the
``nats`` cases), the daemons, one Webhook stream (size 500) created through the first daemon,
and the receiver of ``bench.e2e``. The load generator posts 500-record NDJSON bodies of event
records, ``CONCURRENCY`` in flight, dealt round-robin over the daemons. Figures: records/s from
the first POST to the last record at the receiver, ingest alone (202s), CPU seconds per record
of the daemons (their ingest workers included) and of ``nats-server``, and duplicates. Last,
``run_kill``: three replicas, two streams in two organisations, one replica killed mid-run.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.e2e import (
    CONCURRENCY,
    Daemon,
    _cpu_secs,
    batches,
    create_stream,
    free_port,
    receiver_stats,
    wait_records,
    wait_until_up,
)
from bench.report import write_section
from schemas import Kind
from tests.nats_server import NatsServer

REPLICAS = (1, 2, 3)


async def post_spread(
    session: aiohttp.ClientSession, daemons: Sequence[Daemon], bodies: Sequence[bytes]
) -> float:
    """POST body ``i`` to daemon ``i % len(daemons)``, ``CONCURRENCY`` in flight; return the
    seconds it took."""
    queue = list(reversed(list(enumerate(bodies))))

    async def worker() -> None:
        while queue:
            index, body = queue.pop()
            daemon = daemons[index % len(daemons)]
            headers = {
                "Authorization": f"Bearer {daemon.token}",
                "Content-Type": "application/x-ndjson",
            }
            url = f"{daemon.url}/api/v1/ingest/events"
            async with session.post(url, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def run_case(
    session: aiohttp.ClientSession, receiver: str, bodies: list[bytes], count: int, replicas: int
) -> dict[str, float]:
    """``replicas`` daemons on one NATS (0: one SQLite daemon, ``STREAMER_SYNC=normal``)."""
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as scratch:
        nats = NatsServer(Path(scratch) / "nats") if replicas else None
        env = {"STREAMER_SYNC": "normal", "STREAMER_INGEST_WORKERS": "1"}
        if nats is not None:
            nats.start()
            env |= {"STREAMER_LOG_BACKEND": "nats", "STREAMER_NATS_URL": nats.url}
        daemons = [
            Daemon(Path(scratch) / f"data-{n}", token, **env) for n in range(max(replicas, 1))
        ]
        try:
            for daemon in daemons:
                await wait_until_up(session, f"{daemon.url}/health/ready")
            await create_stream(session, daemons[0], f"{receiver}/hook/replicas")
            await session.post(f"{receiver}/reset")
            cpu_before = sum(daemon.cpu_secs() for daemon in daemons)
            nats_before = 0.0 if nats is None else _cpu_secs(nats.pid)
            started = time.perf_counter()
            ingest_secs = await post_spread(session, daemons, bodies)
            await wait_records(session, receiver, count)
            elapsed = time.perf_counter() - started
            cpu = sum(daemon.cpu_secs() for daemon in daemons) - cpu_before
            nats_cpu = 0.0 if nats is None else _cpu_secs(nats.pid) - nats_before
            stats = await receiver_stats(session, receiver)
        finally:
            for daemon in daemons:
                daemon.stop()
            if nats is not None:
                nats.stop()
    return {
        "rate": count / elapsed,
        "ingest_rate": count / ingest_secs,
        "cpu_us": cpu / count * 1e6,
        "nats_cpu_us": nats_cpu / count * 1e6,
        "duplicates": stats["records"] - stats["unique"],
    }


async def delivered(session: aiohttp.ClientSession, daemon: Daemon) -> float:
    """Records the daemon delivered, over every stream (its ``/metrics``)."""
    async with session.get(f"{daemon.url}/metrics") as response:
        text = await response.text()
    prefix = "streamer_records_delivered_total{"
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


async def post_surviving(
    session: aiohttp.ClientSession, alive: list[Daemon], bodies: Sequence[bytes]
) -> None:
    """POST every body round-robin over the daemons still ``alive``; a body refused (503) or
    cut off by a killed daemon goes to the next one (its records are not stored twice)."""
    queue = list(reversed(list(enumerate(bodies))))

    async def worker() -> None:
        while queue:
            index, body = queue.pop()
            for attempt in range(20):
                daemon = alive[(index + attempt) % len(alive)]
                headers = {
                    "Authorization": f"Bearer {daemon.token}",
                    "Content-Type": "application/x-ndjson",
                }
                try:
                    url = f"{daemon.url}/api/v1/ingest/events"
                    async with session.post(url, data=body, headers=headers) as response:
                        if response.status == 202:
                            break
                except aiohttp.ClientError:
                    continue
            else:
                raise RuntimeError("a body was refused by every replica 20 times")

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def run_kill(session: aiohttp.ClientSession, receiver: str, count: int) -> dict[str, float]:
    """Three replicas, two streams in two organisations; the replica that delivered most is
    killed (``kill -9``) once a third of the records arrived. Every record id must arrive."""
    bodies = batches(count, Kind.EVENT, organisations=2)
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as scratch:
        nats = NatsServer(Path(scratch) / "nats")
        nats.start()
        env = {
            "STREAMER_SYNC": "normal",
            "STREAMER_INGEST_WORKERS": "1",
            "STREAMER_LOG_BACKEND": "nats",
            "STREAMER_NATS_URL": nats.url,
        }
        daemons = [Daemon(Path(scratch) / f"data-{n}", token, **env) for n in range(3)]
        alive = list(daemons)
        try:
            for daemon in daemons:
                await wait_until_up(session, f"{daemon.url}/health/ready")
            for organisation in (1, 2):
                hook = f"{receiver}/hook/org{organisation}"
                await create_stream(session, daemons[0], hook, organisation)
            await session.post(f"{receiver}/reset")
            started = time.perf_counter()
            posting = asyncio.ensure_future(post_surviving(session, alive, bodies))
            while (await receiver_stats(session, receiver))["unique"] < count // 3:
                await asyncio.sleep(0.05)
            counts = [await delivered(session, daemon) for daemon in daemons]
            victim = daemons[counts.index(max(counts))]
            alive.remove(victim)
            victim.process.kill()
            victim.process.wait()
            killed_at = time.perf_counter()
            await posting
            deadline = time.monotonic() + 600
            while (stats := await receiver_stats(session, receiver))["unique"] < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not every record arrived: {stats}")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            for daemon in alive:
                daemon.stop()
            nats.stop()
    return {
        "rate": count / elapsed,
        "after_kill_secs": time.perf_counter() - killed_at,
        "unique": stats["unique"],
        "duplicates": stats["records"] - stats["unique"],
    }


async def bench(args: argparse.Namespace) -> str:
    bodies = batches(args.records, Kind.EVENT)
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)])
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    results: list[tuple[str, dict[str, float]]] = []
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_until_up(session, f"{receiver}/stats")
            results.append(
                ("SQLite, 1 process", await run_case(session, receiver, bodies, args.records, 0))
            )
            for replicas in REPLICAS:
                figures = await run_case(session, receiver, bodies, args.records, replicas)
                results.append((f"JetStream, {replicas} replica(s)", figures))
            kill = await run_kill(session, receiver, args.kill_records)
    finally:
        process.terminate()
        process.wait()
    baseline = results[0][1]["rate"]
    rows = [
        f"| {name} | {f['rate']:,.0f} | {f['rate'] / baseline:.2f}× | {f['ingest_rate']:,.0f}"
        f" | {f['cpu_us']:.0f} | {f['nats_cpu_us']:.0f} | {f['duplicates']:.0f} |"
        for name, f in results
    ]
    return "\n".join(
        [
            "## Replicas on JetStream (`bench/replicas.py`)",
            "",
            f"Command: `python3 -m bench.replicas --records {args.records} --kill-records"
            f" {args.kill_records} --write` — ~750-byte"
            f" event records, 500 per NDJSON POST, {CONCURRENCY} in flight dealt round-robin"
            " over the replicas, one Webhook stream (size 500); one ingest worker per daemon;"
            " nats-server (file storage), daemons, receiver and load generator all on this"
            " 2-core machine.",
            "",
            "| case | records/s end to end | vs SQLite | ingest alone (202s/s) |"
            " daemon CPU µs/record | nats-server CPU µs/record | duplicates |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"A `kill -9` under load (`--kill-records {args.kill_records}`): three replicas, two"
            " streams in two organisations (records dealt between them), the replica that had"
            " delivered most killed once a third of the records had arrived; the load generator"
            " sends a body the killed replica cut off to the next one.",
            "",
            "| records | every id arrived | duplicates | records/s end to end |"
            " seconds from the kill to the last record |",
            "|---:|---|---:|---:|---:|",
            f"| {args.kill_records:,} | {kill['unique']:,.0f} distinct ids"
            f" | {kill['duplicates']:,.0f} | {kill['rate']:,.0f} | {kill['after_kill_secs']:.1f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kill-records", type=int, default=300_000)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    table = asyncio.run(bench(args))
    print(table)
    if args.write:
        write_section("replicas", table)


if __name__ == "__main__":
    main()
