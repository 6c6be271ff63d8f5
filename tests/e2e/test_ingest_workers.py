"""Ingest worker processes die (killed, out of memory) or hang, and ingest keeps its promise:
every request is answered, 202 (stored) or 503 with ``Retry-After`` (nothing stored, send it
again), never a 500 and never a request left unanswered; each 202-acknowledged record is
delivered; a dead worker is replaced; readiness says whether ingest can make progress; and the
workers leave with the service, also when it is killed with SIGKILL.

The bodies are JSON arrays: the NDJSON of good records that producers send every day is read
by the C pass in the service process, and only the other bodies go to a worker. The workers are
found in the process tree: the daemon's children started by
``multiprocessing``'s spawn (the resource tracker, another child, is left alone).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

from schemas import Kind, Version
from tests.e2e.harness import (
    API_POLL_SECS,
    Daemon,
    NewReceiver,
    Response,
    StartDaemon,
    eventually,
    fleet_records,
    ids_of,
    json_array,
    ndjson,
)

CLIENTS = 4
RECORDS = 1000  # per request
MIN_POSTS = 6  # per client, whatever the kills
KILLS = 10


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ingest_workers(daemon: Daemon) -> list[int]:
    """The live ingest worker processes of the running daemon."""
    assert daemon.process is not None
    workers = []
    for pid in _children(daemon.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline and _alive(pid):
            workers.append(pid)
    return workers


def _is_documented_503(response: Response) -> bool:
    return (
        response.status == 503
        and int(response.headers.get("Retry-After", "0")) > 0
        and response.json()["error_token"] == "service_unavailable"
    )


async def test_concurrent_ingest_answers_202_or_503_while_the_worker_is_killed_repeatedly(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon()
    receiver = await new_receiver(keep_bodies=False)
    await daemon.create_stream(receiver.url, size=500)
    acknowledged: set[int] = set()
    statuses: list[int] = []
    unexpected: list[tuple[int, str]] = []
    killed: list[int] = []
    seeds = iter(range(100, 10_000))

    async def client() -> None:
        posted = 0
        while posted < MIN_POSTS or len(killed) < KILLS:
            records = fleet_records(next(seeds), RECORDS, Kind.EVENT)
            # The session's timeout (60 s) fails the test on a request left unanswered.
            response = await daemon.ingest(Kind.EVENT, json_array(records, Kind.EVENT, Version.NEW))
            statuses.append(response.status)
            posted += 1
            if response.status == 202:
                acknowledged.update(ids_of(records))
            elif not _is_documented_503(response):
                unexpected.append((response.status, response.text))

    async def killer() -> None:
        for _ in range(KILLS):
            answered = len(statuses)
            pid = (
                await eventually(
                    lambda: [p for p in ingest_workers(daemon) if p not in killed],
                    what="a live ingest worker",
                    interval_secs=0.005,
                )
            )[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Spread the kills: the next one after ingest answered again.
            await eventually(
                lambda answered=answered: len(statuses) > answered, what="an answer after the kill"
            )

    await asyncio.gather(killer(), *(client() for _ in range(CLIENTS)))

    assert unexpected == []
    assert len(killed) == KILLS
    assert statuses.count(202) > 0, statuses
    # Ingest is whole again: stored, ready, and every acknowledged record arrives.
    last = fleet_records(99, RECORDS, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, json_array(last, Kind.EVENT, Version.NEW), RECORDS)
    acknowledged.update(ids_of(last))
    assert (await daemon.request("GET", "/health/ready", token=None)).status == 200
    # Each death was seen once and replaced once: one worker, as configured.
    assert await daemon.metric("streamer_ingest_workers_lost_total") == KILLS
    assert len(ingest_workers(daemon)) == 1
    await eventually(
        lambda: acknowledged <= receiver.id_set(), 60, what="every acknowledged record delivered"
    )
    assert not [line for line in daemon.output if "request failed" in line]


async def test_a_hung_worker_times_out_is_replaced_and_ingest_goes_on(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(STREAMER_INGEST_TIMEOUT_SECS="2")
    first = fleet_records(1, 10, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, json_array(first, Kind.EVENT, Version.NEW), 10)
    [hung] = ingest_workers(daemon)
    os.kill(hung, signal.SIGSTOP)
    try:
        second = fleet_records(2, 10, Kind.EVENT)
        response = await daemon.ingest(Kind.EVENT, json_array(second, Kind.EVENT, Version.NEW))
        assert _is_documented_503(response), (response.status, response.text)
        # The hung worker was killed, not left behind; a new one stores the body sent again
        # (on a busy machine its start may itself take longer than this short timeout: 503).
        await eventually(lambda: not _alive(hung), what="the hung worker gone")

        async def stored() -> bool:
            response = await daemon.ingest(Kind.EVENT, json_array(second, Kind.EVENT, Version.NEW))
            assert response.status == 202 or _is_documented_503(response), response.text
            return response.status == 202

        await eventually(stored, what="the body stored by a new worker", interval_secs=0.5)
        assert ingest_workers(daemon) not in ([], [hung])
        assert (await daemon.request("GET", "/health/ready", token=None)).status == 200
    finally:
        if _alive(hung):
            os.kill(hung, signal.SIGKILL)


async def test_readiness_is_503_while_no_ingest_worker_can_start_and_200_once_one_can(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon()
    records = fleet_records(3, 10, Kind.EVENT)
    body = json_array(records, Kind.EVENT, Version.NEW)
    await daemon.ingest_ok(Kind.EVENT, body, 10)
    [worker] = ingest_workers(daemon)
    # What a package upgrade that breaks imports does under a running service: the service
    # runs on, and every new worker fails to start (its working directory comes first on
    # sys.path, as the service's own does).
    broken = daemon.data_dir.parent / "streamer"
    broken.mkdir()
    (broken / "__init__.py").write_text('raise ImportError("broken on purpose")\n')
    os.kill(worker, signal.SIGKILL)

    response = await daemon.ingest(Kind.EVENT, body)
    assert _is_documented_503(response), (response.status, response.text)
    ready = await daemon.request("GET", "/health/ready", token=None)
    assert ready.status == 503, ready.text
    assert "ingest" in ready.json()["reason"]

    shutil.rmtree(broken)

    async def is_ready() -> bool:
        return (await daemon.request("GET", "/health/ready", token=None)).status == 200

    await eventually(is_ready, what="ready again", interval_secs=API_POLL_SECS)
    await daemon.ingest_ok(Kind.EVENT, body, 10)


async def test_ingest_workers_exit_when_the_service_is_killed(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(STREAMER_INGEST_WORKERS="2")
    bodies = [
        json_array(fleet_records(s, RECORDS, Kind.EVENT), Kind.EVENT, Version.NEW) for s in (4, 5)
    ]
    await asyncio.gather(*(daemon.ingest_ok(Kind.EVENT, body, RECORDS) for body in bodies))
    workers = await eventually(lambda: ingest_workers(daemon), what="ingest workers")
    await daemon.kill9()
    await eventually(lambda: not [pid for pid in workers if _alive(pid)], what="the workers gone")


async def test_ndjson_of_good_records_is_read_without_a_worker(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon()
    records = fleet_records(6, 10, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 10, ndjson=True)
    assert ingest_workers(daemon) == []
    await daemon.ingest_ok(Kind.EVENT, json_array(records, Kind.EVENT, Version.NEW), 10)
    assert len(ingest_workers(daemon)) == 1
