"""Fixtures shared by the connector suites: real protocol peers on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.aws import Account, Aws, AwsProxy, Moto
from tests.receivers import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An HTTP receiver on ``127.0.0.1`` that answers 200 until scripted otherwise."""
    async with Receiver() as started:
        yield started


# --- AWS: moto in server mode on loopback, reached by the real aiobotocore client ---------


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    """moto's server on ``127.0.0.1`` and a free port, shared by the session."""
    server = Moto.start()
    yield server
    server.stop()


@pytest.fixture
async def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Aws]:
    """A fresh moto account and a proxy, with the process's AWS settings pointing at them.

    Every ``AWS_*`` variable of the outer environment is removed first. Then: the service's
    own credentials are the ``streamer`` user's keys (standard chain, from the environment);
    ``AWS_ENDPOINT_URL`` is moto, and ``AWS_ENDPOINT_URL_KINESIS``/``_S3``/``_STS`` are the
    proxy, so every request of the code under test is seen; no shared config or credentials
    file and no instance metadata are consulted.
    """
    account = await Account.create(moto)
    async with AwsProxy(moto.url) as proxy:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                monkeypatch.delenv(name)
        settings = {
            "AWS_ACCESS_KEY_ID": account.service.access_key_id,
            "AWS_SECRET_ACCESS_KEY": account.service.secret_access_key,
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ENDPOINT_URL_KINESIS": proxy.url,
            "AWS_ENDPOINT_URL_S3": proxy.url,
            "AWS_ENDPOINT_URL_STS": proxy.url,
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        yield Aws(moto, account, proxy)
