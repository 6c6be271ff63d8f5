"""A known path asked with a method it does not serve answers 405 with ``Allow`` (RFC 9110
§15.5.6), in the common JSON error body; an unknown one answers 404."""

from __future__ import annotations

import pytest

from tests.api.harness import Service


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST", "PUT"])
async def test_a_lookup_path_with_another_method_is_405_with_allow(
    service: Service, method: str
) -> None:
    answer = await service.call(method, "/api/v2/data_stream/status", json={})
    assert answer.is_error(405, "method_not_allowed"), answer.text
    assert set(answer.headers["Allow"].split(",")) >= {"GET"}


async def test_a_stream_path_with_another_method_is_405_with_its_methods(
    service: Service,
) -> None:
    answer = await service.call("PUT", "/api/v2/data_stream/7", json={})
    assert answer.is_error(405, "method_not_allowed"), answer.text
    assert {m.strip() for m in answer.headers["Allow"].split(",")} >= {"GET", "PATCH", "DELETE"}


async def test_a_stream_id_that_is_not_a_number_is_not_found(service: Service) -> None:
    answer = await service.call("GET", "/api/v2/data_stream/abc")
    assert answer.is_error(404, "not_found"), answer.text
