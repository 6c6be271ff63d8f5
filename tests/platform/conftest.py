"""Fixtures of the platform-examples suite: the management API on loopback and a webhook
receiver (``tests/api``), and the daemon as a subprocess (``tests/e2e``)."""

from tests.api.conftest import receiver, service, start_service
from tests.e2e.conftest import bootstrap_token, daemon, daemon_nats, log_backend, start_daemon

__all__ = [
    "bootstrap_token",
    "daemon",
    "daemon_nats",
    "log_backend",
    "receiver",
    "service",
    "start_daemon",
    "start_service",
]
