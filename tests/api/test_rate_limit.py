"""The API rate limit (API.md §2): requests per client address in a sliding window; beyond it
403 ``rate_limited``; ingest not counted; memory bounded however many addresses call.

Tripping is checked over HTTP; the passing of time through ``RateLimiter.allow(now=...)``.
"""

from __future__ import annotations

import tracemalloc

import pytest

from streamer.api.ratelimit import RateLimiter
from tests.api.conftest import StartService
from tests.api.harness import event

LIMIT = 5
WINDOW = 10.0


async def test_the_limit_trips_at_the_configured_count(start_service: StartService) -> None:
    service = await start_service(rate_limit_requests=LIMIT, rate_limit_window_secs=300)
    for i in range(3 * LIMIT):  # ingest is not counted, and not refused
        await service.ingest("events", [event(i)])
    observer = await service.token("observer", 1)  # request 1
    statuses = [
        (await service.call("GET", "/api/v2/data_stream", observer)).status for _ in range(LIMIT)
    ]
    assert statuses == [200] * (LIMIT - 1) + [403]

    refused = await service.call("GET", "/api/v2/data_stream/status", observer)
    assert refused.is_error(403, "rate_limited"), refused.text
    assert f"{LIMIT} requests" in refused.body["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    for kind in ("POST", "DELETE"):
        assert (await service.call(kind, "/api/v1/application_token")).is_error(403, "rate_limited")
    assert (await service.call("GET", "/api/v2/data_stream", None)).is_error(403, "rate_limited")

    await service.ingest("events", [event(99)])  # still taken once the limit is reached
    assert (await service.call("GET", "/health/live", None)).status == 200


def test_the_limit_is_per_client_and_exact() -> None:
    limiter = RateLimiter(LIMIT, WINDOW)
    assert [limiter.allow("a", now=1.0 + i / 100) for i in range(LIMIT + 2)] == [True] * LIMIT + [
        False,
        False,
    ]
    assert all(limiter.allow("b", now=2.0) for _ in range(LIMIT))
    assert not limiter.allow("b", now=2.0)


def test_a_burst_across_the_window_boundary_is_still_limited() -> None:
    """The window slides: a burst at the end of one window is still counted at the start of
    the next, so the limit cannot be doubled by straddling a boundary."""
    limiter = RateLimiter(LIMIT, WINDOW)
    assert all(limiter.allow("a", now=WINDOW - 0.01) for _ in range(LIMIT))
    assert not limiter.allow("a", now=WINDOW + 0.01)


@pytest.mark.parametrize("hammering", [False, True], ids=["quiet", "hammering"])
def test_it_recovers_after_the_window(hammering: bool) -> None:
    """Refused requests are not counted: a client that keeps trying while limited recovers
    as soon as one that waits."""
    limiter = RateLimiter(LIMIT, WINDOW)
    assert all(limiter.allow("a", now=0.0) for _ in range(LIMIT))
    assert not limiter.allow("a", now=1.0)
    if hammering:
        assert not any(limiter.allow("a", now=1.0 + i / 1000) for i in range(1000))
    # half the previous window still overlaps: half its count weighs on the new one
    assert [limiter.allow("a", now=1.5 * WINDOW) for _ in range(3)] == [True, True, False]
    # a whole window later, nothing of the burst is left
    assert all(limiter.allow("a", now=3 * WINDOW) for _ in range(LIMIT))
    assert not limiter.allow("a", now=3 * WINDOW)


def test_memory_stays_bounded_with_many_addresses() -> None:
    cap = 1000
    limiter = RateLimiter(LIMIT, WINDOW, max_clients=cap)
    tracemalloc.start()
    try:
        for window in range(3):
            for n in range(50 * cap):
                limiter.allow(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", now=window * WINDOW)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1000 counted addresses in each of two windows: well under a megabyte; 50 000 addresses
    # kept would take several
    assert peak < 1_000_000, peak
    # the counted ones are still limited; an address beyond the cap passes (fails open)
    counted = [limiter.allow("10.0.0.1", now=2 * WINDOW) for _ in range(LIMIT)]
    assert counted[0]
    assert not counted[-1]
    assert all(limiter.allow("192.0.2.1", now=2 * WINDOW) for _ in range(2 * LIMIT))
