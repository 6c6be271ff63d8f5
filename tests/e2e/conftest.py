"""Fixtures for the end-to-end suite: daemons (real subprocesses) and receivers (real servers).

``start_daemon(**env)`` starts ``streamer run`` on a fresh data directory with the e2e defaults
(see ``harness.Daemon``) overridden by ``env``, on the SQLite backend or, in tests marked
``ON_BOTH_BACKENDS`` (``tests/log/backends.py``), on each backend in turn: with ``nats``, every
daemon of the test shares one ``nats-server`` of the test's own (``daemon_nats``). At the end of
the test every daemon still running is stopped with SIGTERM and must exit with code 0. A
failed test's report ends with the last lines each of its daemons wrote ("daemon output").
``daemon`` is one with the defaults. ``new_receiver()`` starts a receiver; all are closed at
the end, before the daemons stop.
``aws`` is a fresh moto account (organisation 1, the e2e records' own) with a proxy in front of
moto; it changes nothing in this process's environment: a daemon reaches it only through
``start_daemon(**aws.account.environment(...))``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from tests.aws import Account, Aws, AwsProxy, Moto
from tests.connectors.fakes import FakeDatadog, FakeKeen
from tests.e2e.harness import Daemon, NewReceiver, Receiver, StartDaemon
from tests.nats_server import NatsServer

_DAEMONS = pytest.StashKey[list[Daemon]]()
_SHOWN_LINES = 80


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report shows what its daemons logged last: a timeout alone does not
    say what the service was doing."""
    report = yield
    if report.failed:
        daemons: list[Daemon] = item.stash.get(_DAEMONS, [])
        for number, daemon in enumerate(daemons):
            lines = "\n".join(daemon.output[-_SHOWN_LINES:])
            report.sections.append((f"daemon {number} output (last {_SHOWN_LINES} lines)", lines))
    return report


@pytest.fixture
def bootstrap_token() -> str:
    return "e2e_" + secrets.token_urlsafe(32)


@pytest.fixture
def log_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite``, unless the test is parametrised over both backends."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def daemon_nats(log_backend: str, tmp_path: Path) -> Iterator[NatsServer | None]:
    """The NATS server of the test's daemons on the ``nats`` backend; ``None`` on SQLite."""
    if log_backend != "nats":
        yield None
        return
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def start_daemon(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    bootstrap_token: str,
    daemon_nats: NatsServer | None,
) -> AsyncIterator[StartDaemon]:
    daemons: list[Daemon] = []
    request.node.stash[_DAEMONS] = daemons
    backend = (
        {}
        if daemon_nats is None
        else {"STREAMER_LOG_BACKEND": "nats", "STREAMER_NATS_URL": daemon_nats.url}
    )

    async def start(**env: str) -> Daemon:
        data_dir = tmp_path / f"daemon-{len(daemons)}" / "data"
        data_dir.parent.mkdir(parents=True)
        daemon = Daemon(data_dir, bootstrap_token, {**backend, **env})
        daemons.append(daemon)
        await daemon.start()
        return daemon

    yield start

    failures = []
    for daemon in daemons:
        if daemon.running:
            code, _ = await daemon.stop()
            if code != 0:
                failures.append(f"exit code {code}:\n" + "\n".join(daemon.output[-30:]))
        await daemon.aclose()
    assert not failures, "a daemon did not exit cleanly on SIGTERM: " + "\n".join(failures)


@pytest.fixture
async def daemon(start_daemon: StartDaemon) -> Daemon:
    return await start_daemon()


@pytest.fixture
async def datadog(start_daemon: StartDaemon) -> AsyncIterator[FakeDatadog]:
    """A fake Datadog API on loopback. After ``start_daemon`` in setup, so closed before the
    daemons stop (as ``new_receiver``)."""
    async with FakeDatadog() as fake:
        yield fake


@pytest.fixture
async def keen(start_daemon: StartDaemon) -> AsyncIterator[FakeKeen]:
    """A fake KeenIO API on loopback, closed before the daemons stop."""
    async with FakeKeen() as fake:
        yield fake


@pytest.fixture
async def new_receiver(start_daemon: StartDaemon) -> AsyncIterator[NewReceiver]:
    # Depends on ``start_daemon`` so that receivers close (releasing hung requests) before the
    # daemons are stopped: a daemon's shutdown never waits on a receiver that will not answer.
    receivers: list[Receiver] = []

    async def make(*, keep_bodies: bool = True) -> Receiver:
        receiver = Receiver(keep_bodies=keep_bodies)
        await receiver.start()
        receivers.append(receiver)
        return receiver

    yield make

    for receiver in receivers:
        await receiver.stop()


# --- AWS: moto in server mode on loopback, for daemons started as subprocesses --------------


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    """moto's server on ``127.0.0.1`` and a free port, shared by the session."""
    server = Moto.start()
    yield server
    server.stop()


@pytest.fixture
async def aws(moto: Moto) -> AsyncIterator[Aws]:
    """A fresh moto account whose role trusts ``org-1``, and a proxy in front of moto."""
    account = await Account.create(moto, organisation=1)
    async with AwsProxy(moto.url) as proxy:
        yield Aws(moto, account, proxy)
