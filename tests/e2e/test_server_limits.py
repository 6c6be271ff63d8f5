"""The listener under hostile clients: every answer is the JSON error body, half-sent requests
are closed within their timeouts while the service keeps answering, ingest bytes in flight are
capped, and the open-file limit is raised at start."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from schemas import Kind, Version, dumps
from tests.e2e.harness import Daemon, StartDaemon, eventually, fleet_records

HEADER_TIMEOUT_SECS = 1.0
BODY_TIMEOUT_SECS = 1.0
GOOD = b"\n".join(dumps(r, Kind.EVENT, Version.NEW) for r in fleet_records(7, 3, Kind.EVENT))


async def exchange(daemon: Daemon, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` bytes on a fresh connection; read the answer until the server closes."""
    address = urlsplit(daemon.base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(20):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


def request_head(daemon: Daemon, *lines: str, method: str = "POST", path: str = "") -> bytes:
    path = path or "/api/v1/ingest/events"
    text = "\r\n".join(
        [f"{method} {path} HTTP/1.1", "Host: x", f"Authorization: Bearer {daemon.token}", *lines]
    )
    return text.encode() + b"\r\n\r\n"


PARSER_ERRORS = {
    "header line of 20 KB": lambda d: request_head(d, "X-Long: " + "a" * 20_000),
    "200 headers": lambda d: request_head(d, *[f"X-H{i}: {i}" for i in range(200)]),
    "bad chunk size": lambda d: (
        request_head(d, "Content-Type: application/json", "Transfer-Encoding: chunked")
        + b"zz\r\n{}\r\n0\r\n\r\n"
    ),
    "Content-Length with chunked": lambda d: (
        request_head(
            d, "Content-Length: 5", "Transfer-Encoding: chunked", "Content-Type: application/json"
        )
        + b"0\r\n\r\n"
    ),
    "negative Content-Length": lambda d: request_head(
        d, "Content-Length: -1", "Content-Type: application/json"
    ),
}


@pytest.mark.parametrize("make", PARSER_ERRORS.values(), ids=PARSER_ERRORS.keys())
async def test_unparsable_requests_get_the_json_error_body(daemon: Daemon, make) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = await exchange(daemon, make(daemon))
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    answer = orjson.loads(body)
    assert answer["error_code"] == status
    assert answer["message"].startswith("the request cannot be read as HTTP/1.1")
    assert daemon.token not in body.decode()
    assert not [line for line in daemon.output if "Traceback" in line]
    assert all(line.startswith("{") for line in daemon.output), daemon.output[-3:]


async def test_405_names_the_allowed_methods_in_json(daemon: Daemon) -> None:
    response = await daemon.request("DELETE", "/api/v1/ingest/events")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error_token"] == "method_not_allowed"


async def test_half_sent_requests_are_closed_while_the_service_answers(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(
        STREAMER_HEADER_TIMEOUT_SECS=str(HEADER_TIMEOUT_SECS),
        STREAMER_BODY_TIMEOUT_SECS=str(BODY_TIMEOUT_SECS),
    )
    address = urlsplit(daemon.base_url)
    connections = []
    for index in range(300):
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        if index % 2:  # a head that never ends
            writer.write(b"POST /api/v1/ingest/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:  # a whole head, then a body that stops half way
            writer.write(
                request_head(daemon, "Content-Type: application/json", "Content-Length: 1000")
                + b'{"id": '
            )
        await writer.drain()
        connections.append((reader, writer))

    async def closed(reader: asyncio.StreamReader) -> bytes:
        return await reader.read()  # until the server closes the connection

    reading = [asyncio.create_task(closed(reader)) for reader, _ in connections]
    answered = 0
    async with asyncio.timeout(HEADER_TIMEOUT_SECS + BODY_TIMEOUT_SECS + 30):  # fail, not hang
        while not all(task.done() for task in reading):
            health = await daemon.request("GET", "/health/live")
            assert health.status == 200
            answered += 1
            await asyncio.wait(reading, timeout=0.1)  # a poll interval, not a synchronisation
    answers = [task.result() for task in reading]
    for index, answer in enumerate(answers):
        if index % 2:
            assert answer == b""  # closed without an answer: no request was made
        else:
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            body = orjson.loads(answer.partition(b"\r\n\r\n")[2])
            assert body["error_token"] == "request_timeout"
    assert answered >= 1
    for _, writer in connections:
        writer.close()
    ingest = await daemon.ingest(Kind.EVENT, GOOD, ndjson=True)
    assert ingest.status == 202


async def test_ingest_bytes_in_flight_beyond_the_cap_get_503_with_retry_after(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(STREAMER_MAX_INFLIGHT_INGEST_BYTES=str(len(GOOD) + 100))
    address = urlsplit(daemon.base_url)
    head = request_head(
        daemon, "Content-Type: application/x-ndjson", f"Content-Length: {len(GOOD)}"
    )

    async def hold() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A request that holds len(GOOD) bytes of the budget while its body trickles."""
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(head + GOOD[:10])
        await writer.drain()
        return reader, writer

    reader, writer = await hold()

    async def refused() -> bool:
        nonlocal reader, writer
        response = await daemon.ingest(Kind.EVENT, GOOD, ndjson=True)
        if response.status == 202:
            # The held request was not in flight yet; or it came in while this one was, and
            # was itself the one refused (then it was answered: hold another).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.1)
                writer.close()
                reader, writer = await hold()
            return False
        assert response.status == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert "in flight" in response.json()["message"]
        return True

    await eventually(refused)
    writer.write(GOOD[10:])
    await writer.drain()
    answer = await reader.readuntil(b"\r\n")
    assert answer.startswith(b"HTTP/1.1 202 ")
    writer.close()
    await daemon.ingest_ok(Kind.EVENT, GOOD, 3, ndjson=True)
    rejected = await daemon.metric("streamer_ingest_requests_rejected_total", status="503")
    assert rejected is not None
    assert rejected >= 1


async def test_rejected_ingest_requests_are_counted_by_status(daemon: Daemon) -> None:
    await daemon.request("POST", "/api/v1/ingest/events", data=b"{}", token=None)
    await daemon.ingest(Kind.EVENT, b'{"id": 1}', ndjson=True)
    await daemon.request(
        "POST", "/api/v1/ingest/events", data=b"{}", headers={"Content-Type": "text/plain"}
    )
    for status in ("401", "400", "415"):
        assert await daemon.metric("streamer_ingest_requests_rejected_total", status=status) == 1


@contextmanager
def soft_file_limit(limit: int) -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_the_open_file_limit_is_raised_to_the_hard_limit(
    start_daemon: StartDaemon,
) -> None:
    with soft_file_limit(256) as hard:
        if hard <= 256:
            pytest.skip(f"the hard open-file limit is {hard}: nothing to raise")
        daemon = await start_daemon()
    assert daemon.process is not None
    limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == [str(hard), str(hard)]
