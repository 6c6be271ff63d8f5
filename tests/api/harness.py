"""The management API under test: the real application on a loopback socket, and a client.

``Service.start(settings)`` builds the app with ``create_app`` and serves it with aiohttp's
``TestServer`` (an ``AppRunner`` + site on ``127.0.0.1``, port picked by the kernel), so the
app's cleanup context (fan-out start, log close) runs exactly as in the daemon. ``call`` sends a
real HTTP request and returns status, headers and the body (parsed when it is JSON).

Nothing here sleeps to synchronise: deliveries are awaited with ``delivered`` (a sentinel
record sent last, awaited at the receiver: records reach a stream in log order).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from schemas import Record
from streamer.api.services import SERVICES
from streamer.app import create_app
from streamer.config import Settings
from tests.receivers import Receiver
from tests.schemas.samples import EVENT, USAGE

__all__ = [
    "ADMIN",
    "Answer",
    "Service",
    "delivered",
    "delivered_ids",
    "event",
    "until",
    "usage",
    "webhook",
]

ADMIN = "admin_token_for_api_tests_0123456789abcdef"
"""The bootstrap (platform ``admin``) token every service here starts with."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def body(self) -> Any:
        return orjson.loads(self.text) if self.text else None

    def is_error(self, status: int, token: str | None = None) -> bool:
        """The answer is the common error body (API.md §1) with this status (and token)."""
        body = self.body
        return (
            self.status == status
            and self.headers.get("Content-Type", "").startswith("application/json")
            and isinstance(body, dict)
            and body.get("error_code") == status
            and isinstance(body.get("message"), str)
            and bool(body["message"])
            and isinstance(body.get("error_token"), str)
            and (token is None or body["error_token"] == token)
        )


class Service:
    """One running application and an HTTP client for it."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client

    @classmethod
    async def start(cls, settings: Settings) -> Self:
        app = await create_app(settings)
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(app, host="127.0.0.1")
        )
        await client.start_server()
        return cls(client)

    async def aclose(self) -> None:
        await self.client.close()

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    @property
    def last_offset(self) -> int:
        """The newest stored record's offset: what ingest has made durable so far."""
        return self.app[SERVICES].log.last_offset

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = ADMIN,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, **kwargs) as response:
            return Answer(response.status, response.headers, await response.text())

    async def token(self, role: str, organisation: int | None = None, name: str = "") -> str:
        """A new application token, made by the bootstrap admin."""
        body: dict[str, Any] = {"role": role, "name": name or role}
        if organisation is not None:
            body["organisation"] = {"id": organisation}
        answer = await self.call("POST", "/api/v1/application_token", json=body)
        assert answer.status == 201, answer.text
        token: str = answer.body["token"]
        return token

    async def create(self, body: dict[str, Any], token: str = ADMIN, *, v1: bool = False) -> int:
        """Create a stream (v2, or v1 with ``v1``) and return its id; fail on anything but 201."""
        api = "v1" if v1 else "v2"
        answer = await self.call("POST", f"/api/{api}/data_stream", token, json=body)
        assert answer.status == 201, answer.text
        location = answer.headers["Location"]
        prefix = f"/api/{api}/data_stream/"
        assert location.startswith(prefix), location
        return int(location.removeprefix(prefix))

    async def stream(self, stream_id: int, *, v1: bool = False) -> Any:
        answer = await self.call("GET", f"/api/{'v1' if v1 else 'v2'}/data_stream/{stream_id}")
        assert answer.status == 200, answer.text
        return answer.body

    async def ingest(self, kind: str, records: list[Record], token: str = ADMIN) -> None:
        answer = await self.call("POST", f"/api/v1/ingest/{kind}", token, json=records)
        assert answer.status == 202, answer.text
        assert answer.body == {"accepted": len(records)}


def webhook(url: str, *, type_id: int = 2, organisation: int | None = 1, **extra: Any) -> Any:
    """A v2 body for a RestAPI stream to ``url`` (one record per request unless ``size``)."""
    credentials = {"url": url, **extra.pop("credentials", {})}
    body: dict[str, Any] = {
        "data_stream_type": {"id": type_id},
        "destination": {"connection_type": "RestAPI", "format": "Json", "credentials": credentials},
        **extra,
    }
    if organisation is not None:
        body["organisation"] = {"id": organisation}
    return body


def event(
    record_id: int, *, organisation: int = 1, event_type: int = 1, alert: bool = False
) -> Record:
    """A valid canonical event record with these values."""
    record = copy.deepcopy(EVENT)
    record.update(id=record_id, alert=alert)
    record["organisation"]["id"] = organisation
    record["event_type"] = {"id": event_type, "description": f"type {event_type}"}
    return record


def usage(record_id: int, *, organisation: int = 1) -> Record:
    record = copy.deepcopy(USAGE)
    record["id"] = record_id
    record["organisation"]["id"] = organisation
    return record


def delivered_ids(receiver: Receiver, path: str | None = None) -> list[int]:
    """The ids of every record the receiver acknowledged (2xx; at ``path``, if given), in
    arrival order, duplicates kept."""
    return [
        record["id"]
        for request in receiver.requests
        if (path is None or request.path == path) and 200 <= request.reply.status < 300
        for record in request.json()
    ]


async def delivered(
    receiver: Receiver, sentinel: int, path: str | None = None, timeout_secs: float = 10.0
) -> set[int]:
    """Wait until the record ``sentinel`` arrived (at ``path``, if given); return every id
    delivered there so far.

    A stream sends its records in log order, so once the last record ingested for it has
    arrived, so has everything before it."""
    async with asyncio.timeout(timeout_secs):
        while sentinel not in delivered_ids(receiver, path):
            await receiver.wait_for_requests(len(receiver.requests) + 1, timeout_secs)
    return set(delivered_ids(receiver, path))


async def until(condition: Callable[[], Awaitable[bool]], timeout_secs: float = 10.0) -> None:
    """Poll the async ``condition`` until it holds; fail past the deadline."""
    deadline = time.monotonic() + timeout_secs
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition} did not hold within {timeout_secs} s")
        await asyncio.sleep(0.01)
