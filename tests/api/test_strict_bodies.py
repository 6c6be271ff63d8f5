"""API bodies take JSON types as written: a boolean, a string or a fraction is not an id, and
ids are positive."""

from __future__ import annotations

from typing import Any

import pytest

from streamer.api.openapi import document
from tests.api.harness import Service, webhook

NOT_IDS = [False, True, "7", 7.0, 0, -5, 2**63]


@pytest.mark.parametrize("ident", NOT_IDS, ids=repr)
async def test_an_organisation_id_must_be_a_positive_integer(service: Service, ident: Any) -> None:
    body = webhook("https://example.com/hook", organisation=None)
    body["organisation"] = {"id": ident}
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["organisation.id"]
    assert (await service.call("GET", "/api/v2/data_stream")).body == []


@pytest.mark.parametrize("type_id", [True, "2", 2.0], ids=repr)
async def test_a_stream_type_must_be_an_integer(service: Service, type_id: Any) -> None:
    body = webhook("https://example.com/hook")
    body["data_stream_type"] = {"id": type_id}
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["data_stream_type.id"]


@pytest.mark.parametrize("size", [True, "10", 10.0], ids=repr)
async def test_a_batch_size_must_be_an_integer(service: Service, size: Any) -> None:
    body = webhook("https://example.com/hook", credentials={"size": size})
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["destination.credentials.size"]


@pytest.mark.parametrize("ident", NOT_IDS, ids=repr)
async def test_a_token_organisation_must_be_a_positive_integer(
    service: Service, ident: Any
) -> None:
    body = {"role": "observer", "name": "o", "organisation": {"id": ident}}
    answer = await service.call("POST", "/api/v1/application_token", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text


def test_the_openapi_document_states_what_the_models_check() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["Ref"]["properties"]["id"]["exclusiveMinimum"] == 0
    role_arn = schemas["S3Credentials"]["properties"]["role_arn"]
    assert role_arn["pattern"].startswith("^arn:aws")
    patch = doc["paths"]["/api/v2/data_stream/{id}"]["patch"]["requestBody"]
    patch_schema = patch["content"]["application/json"]["schema"]
    assert (
        patch_schema["properties"]["destination"]
        == schemas["StreamSpec"]["properties"]["destination"]
    )
    v1 = doc["paths"]["/api/v1/data_stream"]["post"]["requestBody"]
    v1_schema = v1["content"]["application/json"]["schema"]
    assert v1_schema["properties"]["api_type"]["properties"]["id"]["enum"] == [1, 2, 3, 4, 6, 8]


async def test_a_token_organisation_takes_no_other_key(service: Service) -> None:
    body = {"role": "observer", "organisation": {"id": 1, "extra": 42}}
    answer = await service.call("POST", "/api/v1/application_token", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text


LEGACY_KEEN = {
    "data_stream_type": {"id": 2},
    "api_type": {"id": 2},
    "api_username": "project",
    "api_password": "key",
    "organisation": {"id": 1},
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_parameter", {}),
        ("api_username", 7),
        ("api_password", ["key"]),
        ("stream_historic_data", True),
        ("stream_historic_data", "1"),
        ("stream_historic_data", 2),
    ],
    ids=repr,
)
async def test_legacy_fields_take_their_own_types(service: Service, field: str, value: Any) -> None:
    answer = await service.call("POST", "/api/v1/data_stream", json={**LEGACY_KEEN, field: value})
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == [field]
    assert (await service.call("GET", "/api/v1/data_stream")).body == []


async def test_a_legacy_callback_id_must_be_an_integer(service: Service) -> None:
    body = {
        "data_stream_type": {"id": 2},
        "api_type": {"id": 1},
        "api_callback": {"url": "https://example.com/hook", "id": {}},
        "organisation": {"id": 1},
    }
    answer = await service.call("POST", "/api/v1/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["api_callback.id"]


async def test_a_url_too_long_once_encoded_is_refused_not_stored(service: Service) -> None:
    """2,000 characters as sent, 6,000 percent-encoded: a stored stream must read back."""
    body = webhook("https://example.com/" + "é" * 990)
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    assert [e["field"] for e in answer.body["errors"]] == ["destination.credentials.url"]
    assert (await service.call("GET", "/api/v2/data_stream")).body == []
