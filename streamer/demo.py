"""``streamer demo``: the service, a simulated fleet and a local webhook receiver, for a first
look. Everything runs in this process on loopback, with a throw-away data directory.

One progress line shows what was sent and what the webhook received. Ctrl-C (or SIGTERM) stops
the fleet, then the service (in its usual order), then the receiver, and says what to try next.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from pydantic import SecretStr

from streamer.api.services import SERVICES
from streamer.app import create_app
from streamer.client import Progress
from streamer.config import Settings
from streamer.daemon import stop_on_signals
from streamer.replay import simulate

__all__ = ["demo"]


@dataclass
class _Received:
    records: int = 0
    requests: int = 0

    def __str__(self) -> str:
        return f"; webhook received {self.records:,} in {self.requests:,} requests"


async def demo(rate: float) -> None:
    stop = stop_on_signals()
    token = secrets.token_urlsafe(32)
    received = _Received()
    with tempfile.TemporaryDirectory(prefix="streamer-demo-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            listen="127.0.0.1:0",
            bootstrap_token=SecretStr(token),
            allow_private_destinations=True,
            log_level="warning",
        )
        service = web.AppRunner(await create_app(settings), auto_decompress=False)
        receiver = web.AppRunner(_receiver(received), handle_signals=False)
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
            print(f"  or:  STREAMER_TOKEN={token} streamer top --url {api}")
            print(f"  records go to a local webhook at {hook}; Ctrl-C stops the demo\n", flush=True)
            progress = Progress("sent", more=received.__str__)
            await _until(stop, simulate(api, token, rate=rate, count=None, progress=progress))
        finally:
            service.app[SERVICES].draining = True
            await service.cleanup()
            await receiver.cleanup()
    print(
        f"\nstreamer demo: stopped{received}.\n"
        "Next: run your own service (README, Quick start), create a stream that points at your"
        " receiver, and send it records with `streamer replay FILE` or `streamer simulate`."
    )


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, object]) -> None:
    """Run ``work`` until it ends or ``stop`` is set; its failure is raised as it is."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopped):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


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


def _receiver(received: _Received) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        records = orjson.loads(await request.read())
        received.records += len(records)
        received.requests += 1
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app
