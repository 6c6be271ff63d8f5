"""``streamer.shutdown``: one deadline from the signal, split between the steps."""

from __future__ import annotations

import time

import pytest

from streamer.shutdown import CLOSE_SHARE, HTTP_DRAIN_SHARE, ShutdownBudget, http_drain_secs


def test_the_shutdown_budget_is_one_deadline_split_between_the_steps() -> None:
    assert http_drain_secs(10) == pytest.approx(10 * HTTP_DRAIN_SHARE)
    budget = ShutdownBudget(10, started=time.monotonic() - 3)  # 3 s into the shutdown
    assert budget.left_secs() == pytest.approx(7, abs=0.5)
    assert budget.delivery_drain_secs() == pytest.approx(7 - 10 * CLOSE_SHARE, abs=0.5)
    assert budget.close_secs() == pytest.approx(10 * CLOSE_SHARE)
    late = ShutdownBudget(10, started=time.monotonic() - 9.5)
    assert late.delivery_drain_secs() == 0
    assert late.close_secs() == pytest.approx(0.5, abs=0.5)
