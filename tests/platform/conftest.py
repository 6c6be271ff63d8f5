"""The management-API fixtures (the application on loopback, a webhook receiver) for the
platform-examples suite."""

from tests.api.conftest import receiver, service, start_service

__all__ = ["receiver", "service", "start_service"]
