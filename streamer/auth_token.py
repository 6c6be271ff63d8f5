"""Short-lived auth tokens, as ``POST /api/v1/authenticate`` hands them out (API.md §2).

The platform's clients and SDKs trade their application token for an ``auth_token`` and send
that as ``Bearer``. Ours is ``sat.<claims>.<signature>``: the claims name the application token
(its id) and the expiry; the signature is HMAC-SHA256 keyed by a key derived from that
application token's stored digest. So an auth token

- is checked without any state of its own (every replica and every restart accepts it),
- acts exactly as its application token (same role, same organisation), and
- stops working the moment its application token is revoked (the key is gone with it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

import orjson

from streamer.auth import Principal, Tokens, digest
from streamer.log.base import Store

__all__ = ["PREFIX", "TTL_SECS", "check", "issue"]

PREFIX = "sat."
TTL_SECS = 240 * 60
"""The platform's documented session length (its Swagger reference keeps a login 240 minutes)."""


async def issue(tokens: Tokens, application_token: str, ttl_secs: int = TTL_SECS) -> str | None:
    """An auth token for ``application_token``; ``None`` if it is unknown or revoked."""
    principal = await tokens.check(application_token)
    if principal is None:
        return None
    claims = _b64(orjson.dumps({"t": principal.token_id, "exp": int(time.time()) + ttl_secs}))
    return f"{PREFIX}{claims}.{_sign(digest(application_token), claims)}"


async def check(store: Store, auth_token: str) -> Principal | None:
    """Who ``auth_token`` acts as; ``None`` if it is malformed, forged, expired or revoked."""
    claims, _, signature = auth_token.removeprefix(PREFIX).partition(".")
    try:
        parsed = orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        token_id, expiry = parsed["t"], parsed["exp"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        return None
    if not isinstance(token_id, int) or not isinstance(expiry, int) or expiry <= time.time():
        return None
    row = next((row for row in await store.tokens() if row.id == token_id), None)
    if row is None or not hmac.compare_digest(_sign(row.digest, claims), signature):
        return None
    return Principal(row.id, row.role, row.organisation)


def _sign(token_digest: bytes, claims: str) -> str:
    key = hmac.new(token_digest, b"streamer auth token", hashlib.sha256).digest()
    return _b64(hmac.new(key, claims.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
