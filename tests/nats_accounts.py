"""NATS's decentralised authentication, made offline for the tests: an operator, an account
with JetStream and a user, as signed JWTs (``ed25519-nkey``), a server configuration that
trusts the operator and preloads the accounts, and the user's credentials file.

Only what ``nats-server`` checks is filled in: issuer, subject, type and limits, signed by the
right key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import nkeys

__all__ = ["Accounts", "creds_file_text"]

_UNLIMITED = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
_JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class _Key:
    seed: bytes
    public: str

    @classmethod
    def new(cls, prefix: int) -> _Key:
        seed = bytes(nkeys.encode_seed(os.urandom(32), prefix))
        return cls(seed, nkeys.from_seed(bytearray(seed)).public_key.decode())

    def sign_jwt(self, subject: str, nats: dict[str, Any]) -> str:
        claims: dict[str, Any] = {
            "iat": int(time.time()),
            "iss": self.public,
            "sub": subject,
            "name": subject[:8],
            "nats": {**nats, "version": 2},
        }
        digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
        claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
        header = {"typ": "JWT", "alg": "ed25519-nkey"}
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = nkeys.from_seed(bytearray(self.seed)).sign(signed.encode())
        return f"{signed}.{_b64(signature)}"


def creds_file_text(user_jwt: str, user_seed: bytes) -> bytes:
    """A credentials file as ``nsc`` writes them."""
    return (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user_seed.decode()}\n------END USER NKEY SEED------\n"
    ).encode()


class Accounts:
    """One operator, a system account, and an account with JetStream for users."""

    def __init__(self) -> None:
        self._operator = _Key.new(nkeys.PREFIX_BYTE_OPERATOR)
        self._system = _Key.new(nkeys.PREFIX_BYTE_ACCOUNT)
        self._account = _Key.new(nkeys.PREFIX_BYTE_ACCOUNT)

    def server_config(self) -> str:
        """``nats-server`` configuration: trust the operator, know both accounts."""
        operator = self._operator.sign_jwt(
            self._operator.public, {"type": "operator", "system_account": self._system.public}
        )
        system = self._operator.sign_jwt(
            self._system.public, {"type": "account", "limits": _UNLIMITED}
        )
        account = self._operator.sign_jwt(
            self._account.public, {"type": "account", "limits": {**_UNLIMITED, **_JETSTREAM}}
        )
        return (
            f"operator: {operator}\nsystem_account: {self._system.public}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n"
            f"  {self._system.public}: {system}\n  {self._account.public}: {account}\n}}\n"
        )

    def user_creds(self, *, signed_by_the_account: bool = True) -> bytes:
        """A new user's credentials file; ``signed_by_the_account=False``: by an account the
        server does not know."""
        user = _Key.new(nkeys.PREFIX_BYTE_USER)
        signer = self._account if signed_by_the_account else _Key.new(nkeys.PREFIX_BYTE_ACCOUNT)
        user_jwt = signer.sign_jwt(
            user.public, {"type": "user", "subs": -1, "data": -1, "payload": -1}
        )
        return creds_file_text(user_jwt, user.seed)
