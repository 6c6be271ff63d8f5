"""Standard Webhooks signing secrets: ``whsec_`` and the base64 of a 24–64 byte key, refused
field by field otherwise, and never repeated in the answer."""

from __future__ import annotations

import base64

import pytest

from tests.api.harness import Service, webhook

FIELD = "destination.credentials.signing_secret"


def whsec(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


BAD = {
    "empty": ("whsec_", "24 to 64 bytes"),
    "one byte": ("whsec_AA==", "24 to 64 bytes"),
    "23 bytes": (whsec(b"k" * 23), "this one has 23"),
    "65 bytes": (whsec(b"k" * 65), "this one has 65"),
    "unpadded": (whsec(b"k" * 25).rstrip("="), "with its '=' padding"),
    "not base64": ("whsec_" + "*" * 40, "standard base64"),
    "no prefix": (base64.b64encode(b"k" * 32).decode(), "'whsec_'"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
async def test_a_bad_signing_secret_is_a_field_level_422(
    service: Service, case: tuple[str, str]
) -> None:
    secret, message = case
    body = webhook("https://example.com/hook", credentials={"signing_secret": secret})
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.is_error(422, "unprocessable_entity"), answer.text
    [error] = answer.body["errors"]
    assert error["field"] == FIELD
    assert message in error["message"]
    assert "Incorrect padding" not in answer.text
    assert secret == "whsec_" or secret not in answer.text


@pytest.mark.parametrize("size", [24, 32, 64])
async def test_keys_of_24_to_64_bytes_are_taken(service: Service, size: int) -> None:
    body = webhook("https://example.com/hook", credentials={"signing_secret": whsec(b"k" * size)})
    answer = await service.call("POST", "/api/v2/data_stream", json=body)
    assert answer.status == 201, answer.text
