"""emnify's own Python SDK, unchanged, against a running service (API.md §2).

PyPI ``emnify-sdk`` 0.5.3 needs pydantic 1 (ours is 2), so it is installed, pinned, into a
throwaway virtual environment of its own, and a small script runs there against the daemon (a
real subprocess). The SDK reads its base URL from ``EMNIFY_SDK_API_ENDPOINT_URL`` when it is
imported (``emnify/api_manager.py``: ``MAIN_URL``) and logs in with ``POST
{MAIN_URL}/v1/authenticate`` and ``{"application_token": …}`` when a call answers 401
(``BaseApiManager.unauthorised``). The script makes such a call through the SDK's own request
machinery, on the legacy ``/v1/data_stream`` path, so the SDK logs in by itself; the auth token
it got then lists data streams through v1 and v2.

Skipped, with the reason, only when pip cannot reach the package index.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.e2e.harness import Daemon

SDK = "emnify-sdk==0.5.3"
_UNREACHABLE = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not find a version that satisfies",
)

SCRIPT = """
import json, os, sys
base, app_token = sys.argv[1], sys.argv[2]
os.environ["EMNIFY_SDK_API_ENDPOINT_URL"] = base  # read when the SDK is imported
import requests
from emnify import EMnify
from emnify.api_manager import BaseApiManager

class DataStreams(BaseApiManager):  # the SDK's own machinery: 401 -> authenticate -> retry
    request_url_prefix = "/v1/data_stream"
    request_method_name = "get"

client = EMnify(app_token=app_token)
assert client.token is None
v1 = DataStreams().call_api(client)
bearer = {"Authorization": f"Bearer {client.token}"}
v2 = requests.get(base + "/v2/data_stream", headers=bearer, timeout=10)
print(json.dumps({"token": client.token, "v1": v1, "v2": v2.json(), "v2_status": v2.status_code}))
"""


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtual environment holding only the SDK and its dependencies."""
    venv = tmp_path_factory.mktemp("emnify-sdk-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", SDK],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if installed.returncode != 0:
        output = installed.stdout + installed.stderr
        if any(sign in output for sign in _UNREACHABLE):
            pytest.skip(f"pip cannot reach the package index to install {SDK}: {output[-400:]}")
        pytest.fail(f"pip install {SDK} failed:\n{output[-2000:]}")
    return python


async def test_the_emnify_sdk_logs_in_and_its_token_lists_streams(
    sdk_python: Path, daemon: Daemon
) -> None:
    made = await daemon.request(
        "POST",
        "/api/v1/application_token",
        json={"role": "user", "organisation": {"id": 6713}, "name": "emnify SDK"},
    )
    assert made.status == 201, made.text
    app_token = orjson.loads(made.body)["token"]
    created = await daemon.request(
        "POST",
        "/api/v2/data_stream",
        json={
            "data_stream_type": {"id": 2},
            "destination": {
                "connection_type": "RestAPI",
                "credentials": {"url": "https://example.com/hook"},
            },
        },
        token=app_token,
    )
    assert created.status == 201, created.text
    stream_id = int(created.headers["Location"].rsplit("/", 1)[1])

    ran = subprocess.run(
        [str(sdk_python), "-c", SCRIPT, daemon.base_url + "/api", app_token],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    result = orjson.loads(ran.stdout.strip().splitlines()[-1])
    assert result["token"].startswith("sat.")
    assert app_token not in result["token"]
    assert [item["id"] for item in result["v1"]] == [stream_id]
    assert result["v1"][0]["api_type"] == {"id": 6, "description": "RestAPI (Bulk)"}
    assert result["v2_status"] == 200
    assert [item["id"] for item in result["v2"]] == [stream_id]
