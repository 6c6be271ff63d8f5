"""Application tokens: made random, stored only as a SHA-256 digest, checked in constant time.

A token is ``st_`` and 43 characters of URL-safe base64 (32 random bytes). Looking a token up
by its digest reveals nothing about the token itself; the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from streamer.log.base import LogError, Store, TokenRow

__all__ = ["ROLES", "Principal", "Tokens", "digest", "new_token"]

ROLES = ("observer", "user", "admin", "ingest")


def new_token() -> str:
    return "st_" + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a role and an organisation (``None`` for a platform token)."""

    token_id: int
    role: str
    organisation: int | None

    def may(self, *roles: str) -> bool:
        return self.role in roles

    def sees(self, organisation: int) -> bool:
        return self.organisation is None or self.organisation == organisation


class Tokens:
    """Token checks, cached for ``cache_secs``: a token revoked by this process stops working
    at once, one revoked by another process (``streamer token revoke``) within that time."""

    def __init__(self, store: Store, cache_secs: float = 5.0) -> None:
        self._store = store
        self._cache_secs = cache_secs
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    async def create(self, role: str, organisation: int | None, name: str) -> tuple[int, str]:
        """Make a token; return its id and the token (shown this once, never stored)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = new_token()
        token_id = await self._store.add_token(digest(token), role, organisation, name)
        return token_id, token

    async def ensure(self, token: str, role: str, name: str) -> None:
        """Make sure ``token`` exists as a platform token (the bootstrap token); replicas
        starting together may race to add it, and one of them does."""
        if await self._store.token(digest(token)) is not None:
            return
        try:
            await self._store.add_token(digest(token), role, None, name)
        except LogError:
            if await self._store.token(digest(token)) is None:
                raise

    async def check(self, token: str) -> Principal | None:
        presented = digest(token)
        cached = self._cache.get(presented)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._store.token(presented)
        if row is None or not hmac.compare_digest(row.digest, presented):
            self._cache.pop(presented, None)
            return None
        principal = Principal(row.id, row.role, row.organisation)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (now + self._cache_secs, principal)
        return principal

    async def list(self) -> list[TokenRow]:
        return await self._store.tokens()

    async def revoke(self, token_id: int) -> bool:
        self._cache = {k: v for k, v in self._cache.items() if v[1].token_id != token_id}
        return await self._store.delete_token(token_id)
