"""Who may do what (API.md §2–§4): every role × every route × own / other organisation.

The principals are organisation 1's ``observer``, ``user``, ``admin`` and ``ingest`` tokens and
a platform ``admin`` (no organisation). Each case gets fresh targets made by the platform
admin: a stream (and a token) of organisation 1 ("own") or organisation 2 ("other").

Expected answer: 403 when the role may not use the route; else, for an organisation's token
acting on the other organisation, 404 for a stream or token (it is not there for that token),
403 for creating or ingesting there (nothing stored); else the route's success status. A
platform token may act for any organisation. A refused call changes nothing. Without a token,
with an unknown or revoked one, or with Basic credentials: 401 on every route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.api.conftest import settings
from tests.api.harness import ADMIN, Answer, Service, event, usage, webhook
from tests.receivers import Receiver

pytestmark = pytest.mark.asyncio(loop_scope="module")

READ = ("observer", "user", "admin")
WRITE = ("user", "admin")
ADMINS = ("admin",)
INGEST = ("ingest", "admin")
OWN, OTHER = 1, 2  # organisation ids


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    organisation: int | None


PRINCIPALS = (
    Principal("observer", "observer", OWN),
    Principal("user", "user", OWN),
    Principal("admin", "admin", OWN),
    Principal("ingest", "ingest", OWN),
    Principal("platform", "admin", None),
)


@dataclass(frozen=True, slots=True)
class Route:
    """One route; ``{stream}``/``{token}`` in the path are the target's. ``other``: the status
    for an organisation's token acting on the other organisation (``None``: a listing, which
    answers but must not show the other organisation's item). ``scoped=False``: no
    organisation dimension (lookups)."""

    name: str
    method: str
    path: str
    allowed: tuple[str, ...]
    success: int
    other: int | None = 404
    scoped: bool = True

    def body(self, organisation: int, receiver_url: str) -> Any:
        if self.name == "v2 create":
            return webhook(receiver_url, organisation=organisation)
        if self.name == "v1 create":
            return {
                "data_stream_type": {"id": 2},
                "api_type": {"id": 6},
                "api_callback": {"url": receiver_url},
                "organisation": {"id": organisation},
            }
        if self.name == "v2 patch":
            return {"name": "renamed"}
        if self.name == "token create":
            return {"role": "observer", "organisation": {"id": organisation}}
        if self.name == "ingest events":
            return [event(9_000_000 + organisation, organisation=organisation)]
        if self.name == "ingest usage":
            return [usage(9_000_000 + organisation, organisation=organisation)]
        return None


STREAM = "/api/v2/data_stream/{stream}"
LEGACY = "/api/v1/data_stream/{stream}"
ROUTES = (
    Route("v2 list", "GET", "/api/v2/data_stream", READ, 200, other=None),
    Route("v2 get", "GET", STREAM, READ, 200),
    Route("v2 create", "POST", "/api/v2/data_stream", WRITE, 201, other=403),
    Route("v2 patch", "PATCH", STREAM, WRITE, 202),
    Route("v2 restart", "POST", STREAM + "/restart", WRITE, 202),
    Route("v2 delete", "DELETE", STREAM, WRITE, 202),
    Route("v2 dead letters", "GET", STREAM + "/dead_letter", READ, 200),
    Route("v2 dead letter replay", "POST", STREAM + "/dead_letter/replay", WRITE, 202),
    *(
        Route(f"lookup {table}", "GET", f"/api/v2/data_stream/{table}", READ, 200, scoped=False)
        for table in ("status", "type", "connection_type", "filter_field_type")
    ),
    Route("v1 list", "GET", "/api/v1/data_stream", READ, 200, other=None),
    Route("v1 get", "GET", LEGACY, READ, 200),
    Route("v1 create", "POST", "/api/v1/data_stream", WRITE, 201, other=403),
    Route("v1 delete", "DELETE", LEGACY, WRITE, 204),
    Route("v1 filter get", "GET", LEGACY + "/filter/event_type", READ, 200),
    Route("v1 filter put", "PUT", LEGACY + "/filter/event_type/7", WRITE, 204),
    Route("v1 filter delete", "DELETE", LEGACY + "/filter/event_type/5", WRITE, 204),
    Route("token create", "POST", "/api/v1/application_token", ADMINS, 201, other=403),
    Route("token list", "GET", "/api/v1/application_token", ADMINS, 200, other=None),
    Route("token delete", "DELETE", "/api/v1/application_token/{token}", ADMINS, 204),
    Route("ingest events", "POST", "/api/v1/ingest/events", INGEST, 202, other=403),
    Route("ingest usage", "POST", "/api/v1/ingest/usage", INGEST, 202, other=403),
)


def expected(route: Route, principal: Principal, organisation: int) -> int:
    if principal.role not in route.allowed:
        return 403
    if principal.organisation is not None and organisation != principal.organisation:
        return route.success if route.other is None else route.other
    return route.success


@dataclass(slots=True)
class World:
    service: Service
    receiver: Receiver
    tokens: dict[str, str]  # principal name → token
    revoked: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("matrix")
    service = await Service.start(settings(data_dir))
    async with Receiver() as receiver:
        tokens = {
            p.name: ADMIN if p.organisation is None else await service.token(p.role, p.organisation)
            for p in PRINCIPALS
        }
        revoked = await service.token("admin", OWN)
        token_id = max(t["id"] for t in (await service.call("GET", TOKENS)).body)
        assert (await service.call("DELETE", f"{TOKENS}/{token_id}")).status == 204
        yield World(service, receiver, tokens, revoked)
    await service.aclose()


TOKENS = "/api/v1/application_token"


async def _targets(world: World, organisation: int) -> tuple[int, int]:
    """A fresh stream (event-type filter [5]) and observer token of ``organisation``."""
    body = webhook(
        world.receiver.url,
        organisation=organisation,
        filters=[{"field": "event_type_id", "value": [5]}],
    )
    stream = await world.service.create(body)
    await world.service.token("observer", organisation, name="target")
    token = max(t["id"] for t in (await world.service.call("GET", TOKENS)).body)
    return stream, token


def _cases() -> list[Any]:
    cases = []
    for route in ROUTES:
        for principal in PRINCIPALS:
            for organisation in (OWN, OTHER) if route.scoped else (OWN,):
                scope = "own" if organisation == OWN else "other"
                cases.append(
                    pytest.param(
                        route, principal, organisation, id=f"{route.name}-{principal.name}-{scope}"
                    )
                )
    return cases


@pytest.mark.parametrize(("route", "principal", "organisation"), _cases())
async def test_status(world: World, route: Route, principal: Principal, organisation: int) -> None:
    service = world.service
    stream, token_id = await _targets(world, organisation)
    before = await _snapshot(service, stream)
    stored = service.last_offset
    path = route.path.format(stream=stream, token=token_id)
    body = route.body(organisation, world.receiver.url)

    answer = await service.call(route.method, path, world.tokens[principal.name], json=body)

    status = expected(route, principal, organisation)
    assert answer.status == status, answer.text
    if status >= 400:
        assert answer.is_error(status, {403: "forbidden", 404: "not_found"}[status])
        assert await _snapshot(service, stream) == before, "a refused call changed the stream"
    if route.name.startswith("ingest"):
        assert service.last_offset == stored + (status == 202), "stored iff accepted"
    if route.other is None and status == 200:
        listed = {item["id"] for item in answer.body}
        target = token_id if route.name.startswith("token") else stream
        visible = principal.organisation in (None, organisation)
        assert (target in listed) == visible


async def _snapshot(service: Service, stream: int) -> Any:
    answer = await service.call("GET", f"/api/v2/data_stream/{stream}")
    if answer.status != 200:
        return answer.status
    body = answer.body
    return {key: body[key] for key in ("name", "destination", "filters", "status")}


CREDENTIALS = {
    "none": {},
    "unknown": {"Authorization": "Bearer st_not-a-token-of-this-service"},
    "empty bearer": {"Authorization": "Bearer "},
    "basic": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    "revoked": None,  # the world's revoked admin token
}


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_unauthenticated(world: World, route: Route, credentials: str) -> None:
    headers = CREDENTIALS[credentials]
    if headers is None:
        headers = {"Authorization": f"Bearer {world.revoked}"}
    path = route.path.format(stream=1, token=1)
    body = route.body(OWN, world.receiver.url)
    stored = world.service.last_offset

    answer: Answer = await world.service.call(route.method, path, None, json=body, headers=headers)

    assert answer.is_error(401, "unauthorized"), answer.text
    if credentials == "basic":
        assert "application token" in answer.body["message"]
    assert world.service.last_offset == stored
