"""Settings for the whole test session.

Ingest: see ``pytest_configure``.

AWS: no test may reach AWS itself or the instance metadata service, whatever the developer's
environment holds. Every ``AWS_*`` variable is replaced: dummy credentials, a closed loopback
endpoint, metadata lookups off. Tests that talk to moto set their own on top (the ``aws``
fixture); daemons started as subprocesses inherit these.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nats_server import NatsServer

_AWS_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def pytest_configure(config: pytest.Config) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(_AWS_DEFAULTS)
    # Services built in the test process parse ingest bodies in it (no worker processes to
    # spawn per test); the daemons of tests/e2e ask for a worker process explicitly.
    os.environ["STREAMER_INGEST_WORKERS"] = "0"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A ``nats-server -js`` of the test's own (random port, store in ``tmp_path``), stopped
    at the end; ``restart()`` brings it back on the same port and store."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()
