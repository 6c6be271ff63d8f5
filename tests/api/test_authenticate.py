"""``POST /api/v1/authenticate`` (API.md §2): an application token traded for a short-lived
auth token that the API accepts as ``Bearer``, as the platform's clients and SDKs log in."""

from __future__ import annotations

import time

import pytest

from streamer import auth_token
from streamer.api.services import SERVICES
from tests.api.harness import Service, webhook


async def login(service: Service, application_token: str) -> str:
    answer = await service.call(
        "POST", "/api/v1/authenticate", None, json={"application_token": application_token}
    )
    assert answer.status == 200, answer.text
    assert set(answer.body) == {"auth_token"}
    issued: str = answer.body["auth_token"]
    return issued


async def test_an_auth_token_acts_as_its_application_token(service: Service) -> None:
    user = await service.token("user", 1)
    other = await service.token("user", 2)
    issued = await login(service, user)
    assert issued != user
    assert user not in issued

    stream_id = await service.create(webhook("https://example.com/hook"), issued)
    for path in ("/api/v1/data_stream", "/api/v2/data_stream"):
        listed = await service.call("GET", path, issued)
        assert listed.status == 200
        assert [item["id"] for item in listed.body] == [stream_id]
        other_listed = await service.call("GET", path, await login(service, other))
        assert other_listed.body == []  # organisation 2 sees none of organisation 1's streams
    observer = await login(service, await service.token("observer", 1))
    refused = await service.call("DELETE", f"/api/v2/data_stream/{stream_id}", observer)
    assert refused.is_error(403)


async def test_the_application_token_as_bearer_keeps_working(service: Service) -> None:
    user = await service.token("user", 1)
    await login(service, user)
    assert (await service.call("GET", "/api/v2/data_stream", user)).status == 200


async def test_revoking_the_application_token_ends_its_auth_tokens(service: Service) -> None:
    user = await service.token("user", 1, name="to revoke")
    issued = await login(service, user)
    assert (await service.call("GET", "/api/v2/data_stream", issued)).status == 200
    tokens = (await service.call("GET", "/api/v1/application_token")).body
    token_id = next(t["id"] for t in tokens if t["name"] == "to revoke")
    assert (await service.call("DELETE", f"/api/v1/application_token/{token_id}")).status < 300

    answer = await service.call("GET", "/api/v2/data_stream", issued)
    assert answer.is_error(401)


@pytest.mark.parametrize(
    "forged",
    [
        "sat.",
        "sat.not-base64!.x",
        "sat.eyJ0IjoxLCJleHAiOjk5OTk5OTk5OTl9.",  # {"t":1,"exp":9999999999}, no signature
        "sat.eyJ0IjoxLCJleHAiOjk5OTk5OTk5OTl9.AAAA",
    ],
)
async def test_forged_auth_tokens_are_refused(service: Service, forged: str) -> None:
    assert (await service.call("GET", "/api/v2/data_stream", forged)).is_error(401)


async def test_a_changed_or_expired_auth_token_is_refused(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await service.token("user", 1)
    issued = await login(service, user)
    claims, signature = issued.removeprefix("sat.").split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert (await service.call("GET", "/api/v2/data_stream", f"sat.{claims}.{flipped}")).is_error(
        401
    )

    expired = await auth_token.issue(service.app[SERVICES].tokens, user, ttl_secs=-1)
    assert expired is not None
    assert (await service.call("GET", "/api/v2/data_stream", expired)).is_error(401)
    later = time.time() + auth_token.TTL_SECS + 1
    monkeypatch.setattr("streamer.auth_token.time.time", lambda: later)
    assert (await service.call("GET", "/api/v2/data_stream", issued)).is_error(401)


async def test_username_and_password_get_the_deprecation_answer(service: Service) -> None:
    answer = await service.call(
        "POST", "/api/v1/authenticate", None, json={"username": "ops", "password": "secret"}
    )
    assert answer.is_error(401)
    assert "deprecated" in answer.body["message"]
    assert "application token" in answer.body["message"]
    assert "secret" not in answer.text


@pytest.mark.parametrize("body", [{"application_token": "st_unknown"}, {"application_token": ""}])
async def test_unknown_or_missing_application_tokens_are_refused(
    service: Service, body: dict[str, str]
) -> None:
    answer = await service.call("POST", "/api/v1/authenticate", None, json=body)
    assert answer.status in (401, 422)
    assert answer.is_error(answer.status)
    assert "auth_token" not in answer.body
