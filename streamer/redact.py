"""Secrets of a destination kept out of everything that leaves the service.

A destination's secrets are its header values, signing secret, API and write keys, and the
user information of its URL. ``mask_url`` hides the latter wherever a URL is shown
(``mask_urls`` in a comma-separated list of them);
``redact`` replaces every secret value (as written, percent-encoded or JSON-escaped) in a text
that may echo one, such as a destination's error reply, before it reaches a stream's error,
a log line or an API answer. Values shorter than ``MIN_SECRET_CHARS`` are not searched for: a
header value like ``1`` is no secret, and hiding every ``1`` would garble the message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["MASK", "MIN_SECRET_CHARS", "mask_url", "mask_urls", "redact", "secret_values"]

MASK = "****"
MIN_SECRET_CHARS = 6


def mask_url(url: str | None) -> str | None:
    """``url`` with its user information (``user:password@``) shown as ``****@``."""
    if url is None:
        return None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=MASK + "@" + parts.netloc.rpartition("@")[2]))


def mask_urls(urls: str) -> str:
    """A comma-separated list of URLs (NATS's servers), each with its user information
    masked."""
    return ",".join(mask_url(url.strip()) or "" for url in urls.split(","))


def secret_values(credentials: Mapping[str, Any]) -> list[str]:
    """Every secret value of a destination's stored credentials."""
    found = [header.partition(":")[2].strip() for header in credentials.get("headers") or ()]
    for key in ("signing_secret", "api_key", "write_key"):
        value = credentials.get(key)
        if isinstance(value, str):
            found.extend((value, value.removeprefix("whsec_")))
    url = credentials.get("url")
    if isinstance(url, str):
        netloc = urlsplit(url).netloc
        if "@" in netloc:
            userinfo = netloc.rpartition("@")[0]
            user, _, password = userinfo.partition(":")
            found.extend(
                text for part in (userinfo, user, password) for text in (part, unquote(part))
            )
    return sorted({v for v in found if len(v) >= MIN_SECRET_CHARS}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value, in the forms it may be echoed in, as ``****``."""
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
            text = text.replace(form, MASK)
    return text
