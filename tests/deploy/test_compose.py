"""``deploy/compose.yaml``: three streamer replicas and one NATS with JetStream, for a local
look. No container engine here: the file is parsed (YAML merge keys resolved as Compose does)
and its wiring checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.settings_names import SETTINGS

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
REPLICAS = ("streamer-1", "streamer-2", "streamer-3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(parsed, dict)
    return parsed


def test_three_replicas_and_nats(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"nats", *REPLICAS}


def test_nats_runs_jetstream_on_a_volume_and_reports_its_health(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert re.fullmatch(r"nats:\d+\.\d+\.\d+-alpine", nats["image"]), "a pinned NATS"
    command = nats["command"]
    assert "--jetstream" in command
    store = command[command.index("--store_dir") + 1]
    [volume] = nats["volumes"]
    name, _, mounted = volume.partition(":")
    assert mounted == store
    assert name in compose["volumes"]
    assert "/healthz" in " ".join(nats["healthcheck"]["test"])


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_is_the_image_on_nats(compose: dict[str, Any], replica: str) -> None:
    service = compose["services"][replica]
    assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").is_file()
    assert service["depends_on"] == {"nats": {"condition": "service_healthy"}}
    env = service["environment"]
    assert set(env) <= SETTINGS, f"not settings of the service: {set(env) - SETTINGS}"
    assert env["STREAMER_LOG_BACKEND"] == "nats"
    assert env["STREAMER_NATS_URL"] == "nats://nats:4222"
    assert env["STREAMER_LISTEN"] == "0.0.0.0:8080"
    assert env["STREAMER_BOOTSTRAP_TOKEN"].startswith("${STREAMER_BOOTSTRAP_TOKEN:?"), (
        "the token comes from the caller's environment, never from the file"
    )
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > 2 * float(env["STREAMER_SHUTDOWN_TIMEOUT_SECS"])
    assert service["read_only"] is True


def test_each_replica_has_its_own_host_port(compose: dict[str, Any]) -> None:
    published = [port.split(":")[0] for r in REPLICAS for port in compose["services"][r]["ports"]]
    assert sorted(published) == ["8081", "8082", "8083"]
