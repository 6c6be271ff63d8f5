"""Authenticating to NATS with an NKEY seed file or a credentials file, against a real
``nats-server -js`` that lets in only one user's public key, or only the users of one
operator's account (JWTs made and signed here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
import structlog

from streamer.log.base import LogError
from streamer.log.jetstream import JetStreamLog
from streamer.log.kv import KvStore
from streamer.log.nats_connection import NatsOptions, _why, warn_loose_secret_files
from tests.nats_accounts import Accounts, creds_file_text
from tests.nats_server import NatsServer

pytestmark = pytest.mark.nats

NOWHERE = "nats://127.0.0.1:1"
"""No server: the files are checked before connecting, so these tests never get that far."""


def user_seed() -> bytes:
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def secret_file(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    path.chmod(0o600)
    return path


def configured_server(tmp_path: Path, config: str) -> Iterator[NatsServer]:
    """A ``nats-server -js`` with ``config`` as its configuration file, for a fixture."""
    config_file = tmp_path / "nats.conf"
    config_file.write_text(config)
    server = NatsServer(tmp_path / "nats", config_file)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seed() -> bytes:
    return user_seed()


@pytest.fixture
def nkey_server(tmp_path: Path, seed: bytes) -> Iterator[NatsServer]:
    """A server whose only user is ``seed``'s public key."""
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    yield from configured_server(
        tmp_path, f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n'
    )


async def test_the_seed_file_lets_the_store_in(
    nkey_server: NatsServer, seed: bytes, tmp_path: Path
) -> None:
    seed_file = secret_file(tmp_path / "user.nk", seed + b"\n")
    store = await KvStore.open(NatsOptions(nkey_server.url, nkey_seed_file=seed_file))
    try:
        assert await store.tokens() == []
    finally:
        await store.aclose()


async def test_without_a_seed_the_server_refuses_in_one_line(nkey_server: NatsServer) -> None:
    with pytest.raises(LogError) as refused:
        await KvStore.open(NatsOptions(nkey_server.url))
    message = str(refused.value)
    assert message.startswith(f"cannot connect to NATS at {nkey_server.url}")
    assert "authorization violation" in message.lower()
    assert "\n" not in message


async def test_another_users_seed_is_refused(nkey_server: NatsServer, tmp_path: Path) -> None:
    seed_file = secret_file(tmp_path / "other.nk", user_seed())
    with pytest.raises(LogError, match=r"(?i)authorization violation"):
        await KvStore.open(NatsOptions(nkey_server.url, nkey_seed_file=seed_file))


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


@pytest.fixture
def operator_server(tmp_path: Path, accounts: Accounts) -> Iterator[NatsServer]:
    """A server that trusts one operator's accounts (JWTs), as NATS accounts services run."""
    yield from configured_server(tmp_path, accounts.server_config())


async def test_a_credentials_file_lets_the_log_and_the_store_in(
    operator_server: NatsServer, accounts: Accounts, tmp_path: Path
) -> None:
    creds_file = secret_file(tmp_path / "user.creds", accounts.user_creds())
    options = NatsOptions(operator_server.url, creds_file=creds_file)
    store = await KvStore.open(options)
    try:
        assert await store.tokens() == []
    finally:
        await store.aclose()
    log = await JetStreamLog.open(options, 3600.0)
    await log.aclose()


async def test_a_user_of_an_unknown_account_is_refused(
    operator_server: NatsServer, accounts: Accounts, tmp_path: Path
) -> None:
    creds = accounts.user_creds(signed_by_the_account=False)
    creds_file = secret_file(tmp_path / "stranger.creds", creds)
    with pytest.raises(LogError) as refused:
        await KvStore.open(NatsOptions(operator_server.url, creds_file=creds_file))
    assert str(refused.value).startswith(f"cannot connect to NATS at {operator_server.url}")
    assert "authorization violation" in str(refused.value).lower()


async def test_without_credentials_the_accounts_server_refuses_in_one_line(
    operator_server: NatsServer,
) -> None:
    """The server drops a connection that brings no JWT (nats-py sees the reset)."""
    with pytest.raises(LogError) as refused:
        await KvStore.open(NatsOptions(operator_server.url))
    message = str(refused.value)
    assert message.startswith(f"cannot connect to NATS at {operator_server.url}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("setting", "text", "problem"),
    [
        ("nkey_seed_file", b"", "holds no NKEY user seed"),
        ("nkey_seed_file", b"SUNOTASEED\n", "holds no NKEY user seed"),
        (
            "creds_file",
            b"not a credentials file\n",
            "holds no user JWT: not a NATS credentials file",
        ),
        (
            "creds_file",
            creds_file_text("eyJhbGciOiJlZDI1NTE5In0.e30.c2ln", b""),
            "holds no NKEY user seed",
        ),
    ],
)
async def test_a_malformed_file_is_one_line_naming_the_setting(
    tmp_path: Path, setting: str, text: bytes, problem: str
) -> None:
    path = secret_file(tmp_path / "secret", text)
    options = NatsOptions(
        NOWHERE,
        creds_file=path if setting == "creds_file" else None,
        nkey_seed_file=path if setting == "nkey_seed_file" else None,
    )
    with pytest.raises(LogError) as refused:
        await KvStore.open(options)
    name = f"STREAMER_NATS_{setting.upper()}"
    assert str(refused.value) == f"{path} ({name}) {problem}"


async def test_the_seed_itself_is_never_shown(tmp_path: Path) -> None:
    """An account seed (not a user's) is refused without being echoed."""
    account = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT))
    path = secret_file(tmp_path / "account.nk", account)
    with pytest.raises(LogError) as refused:
        await KvStore.open(NatsOptions(NOWHERE, nkey_seed_file=path))
    assert account.decode() not in str(refused.value)
    assert "holds no NKEY user seed" in str(refused.value)


async def test_a_missing_file_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "absent.creds"
    with pytest.raises(LogError) as refused:
        await KvStore.open(NatsOptions(NOWHERE, creds_file=missing))
    assert str(refused.value) == (
        f"cannot read {missing} (STREAMER_NATS_CREDS_FILE): No such file or directory"
    )


async def test_a_seed_and_a_credentials_file_are_refused_together(
    tmp_path: Path, seed: bytes, accounts: Accounts
) -> None:
    options = NatsOptions(
        NOWHERE,
        creds_file=secret_file(tmp_path / "user.creds", accounts.user_creds()),
        nkey_seed_file=secret_file(tmp_path / "user.nk", seed),
    )
    with pytest.raises(LogError) as refused:
        await KvStore.open(options)
    assert str(refused.value) == (
        "set one of STREAMER_NATS_CREDS_FILE and STREAMER_NATS_NKEY_SEED_FILE, not both: "
        "each names the user"
    )


@pytest.mark.parametrize(
    ("mode", "group", "warned"),
    [
        (0o600, "own", False),
        (0o400, "own", False),
        (0o640, "own", False),  # a Kubernetes Secret volume with the pod's fsGroup
        (0o640, "another", True),
        (0o644, "own", True),
    ],
)
def test_a_file_others_can_read_is_warned_about(
    tmp_path: Path, seed: bytes, mode: int, group: str, warned: bool
) -> None:
    path = secret_file(tmp_path / "user.nk", seed)
    path.chmod(mode)
    if group == "another":
        if os.geteuid() != 0:
            pytest.skip("only root gives a file to a group it is not in")
        os.chown(path, -1, os.getegid() + 4242)
    with structlog.testing.capture_logs() as logs:
        warn_loose_secret_files(NatsOptions(NOWHERE, nkey_seed_file=path))
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert bool(warnings) is warned
    for entry in warnings:
        assert entry["setting"] == "STREAMER_NATS_NKEY_SEED_FILE"
        assert seed.decode() not in repr(entry)


def test_a_refused_first_connect_is_told_by_the_servers_refusal_not_the_reset_after_it() -> None:
    """The server closes the connection it refused: under load a later try may fail with a mere
    reset, and the one-line error must still say why."""
    refusal = "nats: 'Authorization Violation'"
    assert _why([refusal, "[Errno 104] Connection reset by peer"]) == refusal
    assert _why(["[Errno 111] Connection refused"]) == "[Errno 111] Connection refused"
    assert _why([]) == "no answer"
