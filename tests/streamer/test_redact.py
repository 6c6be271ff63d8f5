"""Secret values out of texts and URLs (``streamer.redact``)."""

from __future__ import annotations

import pytest

from streamer.redact import mask_url, mask_urls, redact, secret_values


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@host/x?q=1", "https://****@host/x?q=1"),
        ("https://token@host:8443/", "https://****@host:8443/"),
        ("https://a%40b:p%3A@[::1]:80/", "https://****@[::1]:80/"),
        ("https://host/path@x", "https://host/path@x"),
        (None, None),
    ],
)
def test_mask_url_hides_the_user_information(url: str | None, shown: str | None) -> None:
    assert mask_url(url) == shown


def test_mask_urls_hides_the_user_information_of_every_url_of_a_list() -> None:
    shown = mask_urls("nats://u:secret1@a:4222, nats://u:secret2@b:4222,tls://c:4222")
    assert shown == "nats://****@a:4222,nats://****@b:4222,tls://c:4222"


def test_every_secret_of_a_destination_is_found_and_redacted_in_its_echoed_forms() -> None:
    credentials = {
        "url": "https://hook%2Duser:pass%2Fword@example.com/",
        "headers": ["X-Key: value 123/456", "X-Version: 1"],
        "signing_secret": "whsec_c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5",
        "api_key": "dd-api-key-0001",
    }
    secrets = secret_values(credentials)
    assert "1" not in secrets  # too short to be a secret, and hiding it would garble messages
    text = (
        'got "value 123/456", value%20123%2F456 hook-user:pass/word'
        " c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5 dd-api-key-0001 HTTP 401"
    )
    assert redact(text, secrets) == 'got "****", **** **** **** **** HTTP 401'
