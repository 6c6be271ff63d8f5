"""``streamer replay`` and ``streamer simulate`` as a user runs them: real subprocesses sending
to the service on a loopback socket, records arriving at a real receiver."""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from schemas import Kind, Version, dumps, render_csv
from streamer.api.services import SERVICES
from streamer.app import create_app
from streamer.config import Settings
from streamer.simulate import Fleet
from streamer.spec import StreamSpec
from tests.receivers import Receiver, eventually


@dataclass
class Service:
    url: str
    token: str
    receiver: Receiver

    def delivered_ids(self) -> list[int]:
        return [record["id"] for request in self.receiver.requests for record in request.json()]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    token = secrets.token_urlsafe(32)
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_token=SecretStr(token),
        allow_private_destinations=True,
        linger_ms=0,
    )
    runner = web.AppRunner(await create_app(settings), auto_decompress=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = "http://{}:{}".format(*runner.addresses[0][:2])
    async with Receiver() as receiver:
        app = runner.app
        assert app is not None
        state = await app[SERVICES].fanout.create(
            1,
            StreamSpec.model_validate(
                {
                    "data_stream_type": {"id": 3},
                    "destination": {
                        "connection_type": "RestAPI",
                        "credentials": {"url": receiver.url + "/hook", "size": 100},
                    },
                    "format_version": "new",
                    "filters": [],
                }
            ),
        )
        assert state.id == 1
        yield Service(url, token, receiver)
    await runner.cleanup()


async def streamer(*args: str, token: str, stdin: bytes = b"") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamer",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "STREAMER_TOKEN": token},
    )
    _, stderr = await asyncio.wait_for(process.communicate(stdin), 120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_replay_sends_every_record_of_json_and_csv_archives(
    service: Service, tmp_path: Path
) -> None:
    fleet = Fleet(seed=5, organisations=1)
    events = [fleet.event() for _ in range(700)]
    usage = [fleet.usage() for _ in range(300)]
    ndjson = tmp_path / "events.ndjson.gz"
    ndjson.write_bytes(gzip.compress(b"\n".join(dumps(r, Kind.EVENT, Version.OLD) for r in events)))
    csv = tmp_path / "cdr_20261101_000000.csv"
    csv.write_text(render_csv(usage, Kind.USAGE, Version.MIGRATED))

    code, stderr = await streamer(
        "replay", str(ndjson), str(csv), "--url", service.url, token=service.token
    )

    assert code == 0, stderr
    expected = sorted(r["id"] for r in [*events, *usage])
    await eventually(lambda: len(service.delivered_ids()) >= len(expected), 30)
    assert sorted(service.delivered_ids()) == expected
    delivered = {r["id"]: r for q in service.receiver.requests for r in q.json()}
    assert delivered[events[0]["id"]]["timestamp"] == events[0]["timestamp"]  # back to new


async def test_replay_stops_at_a_bad_record_with_its_position(
    service: Service, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(dumps(Fleet().event(), Kind.EVENT, Version.NEW) + b'\n{"id": 1}\n')

    code, stderr = await streamer("replay", str(bad), "--url", service.url, token=service.token)

    assert code == 1
    assert "bad.ndjson: record 1: is neither an event" in stderr
    assert "Traceback" not in stderr


async def test_replay_reports_a_refused_token(service: Service, tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson"
    good.write_bytes(dumps(Fleet().event(), Kind.EVENT, Version.NEW))

    code, stderr = await streamer("replay", str(good), "--url", service.url, token="wrong")

    assert code == 1
    assert "401" in stderr
    assert "Traceback" not in stderr


async def test_simulate_sends_the_count_asked_for(service: Service) -> None:
    code, stderr = await streamer(
        "simulate", "--url", service.url, "--rate", "5000", "--count", "1200", token=service.token
    )

    assert code == 0, stderr
    await eventually(lambda: len(service.delivered_ids()) >= 1200, 30)
    ids = service.delivered_ids()
    assert len(ids) == len(set(ids)) == 1200
    kinds = [("event_type" in r) for q in service.receiver.requests for r in q.json()]
    assert kinds.count(True) == kinds.count(False) == 600
    assert orjson.loads(service.receiver.requests[0].body)[0]["organisation"]["id"] == 1
