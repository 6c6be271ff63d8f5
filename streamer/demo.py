"""``streamer demo``: the service, a simulated fleet and a local webhook receiver, for a first
look. Everything runs in this process on loopback, with a throw-away data directory."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from pydantic import SecretStr

from streamer.api.services import SERVICES
from streamer.app import create_app
from streamer.config import Settings
from streamer.replay import simulate

__all__ = ["demo"]


async def demo(rate: float) -> None:
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="streamer-demo-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            listen="127.0.0.1:0",
            bootstrap_token=SecretStr(token),
            allow_private_destinations=True,
            log_level="warning",
        )
        service = web.AppRunner(await create_app(settings), auto_decompress=False)
        receiver = web.AppRunner(_receiver())
        await service.setup()
        await receiver.setup()
        try:
            await web.TCPSite(service, "127.0.0.1", 0).start()
            await web.TCPSite(receiver, "127.0.0.1", 0).start()
            api = "http://{}:{}".format(*service.addresses[0][:2])
            hook = "http://{}:{}/hook".format(*receiver.addresses[0][:2])
            await _create_stream(api, token, hook)
            print(f"streamer demo: API {api}  token {token}")
            print(f"  try: curl -H 'Authorization: Bearer {token}' {api}/api/v2/data_stream")
            print(f"  records go to a local webhook at {hook}; Ctrl-C stops the demo\n")
            await simulate(api, token, rate=rate, count=None, batch=50)
        finally:
            service.app[SERVICES].draining = True
            await receiver.cleanup()
            await service.cleanup()


async def _create_stream(api: str, token: str, hook: str) -> None:
    body = {
        "name": "demo webhook",
        "data_stream_type": {"id": 3},
        "organisation": {"id": 1},
        "destination": {"connection_type": "RestAPI", "credentials": {"url": hook, "size": 100}},
        "format_version": "new",
    }
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{api}/api/v2/data_stream"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as answer,
    ):
        answer.raise_for_status()


def _receiver() -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        records = orjson.loads(await request.read())
        kinds = sum("event_type" in r for r in records), sum("traffic_type" in r for r in records)
        first = records[0]
        print(
            f"webhook got {len(records):3} records ({kinds[0]} events, {kinds[1]} usage),"
            f" User-Agent {request.headers.get('User-Agent')}, first id {first['id']}"
        )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app
