"""/metrics per API: waits, rate-limit answers received, requests sent, budget left and the
pause, read from the live governors (syncd.status_metrics.refresh_governor_metrics)."""

from __future__ import annotations

from prometheus_client import generate_latest

from syncd.clock import FakeClock
from syncd.governor import WRITE, Governor, Limit
from syncd.metrics import REGISTRY
from syncd.status_metrics import refresh_governor_metrics

API = "metrics-test-api"  # a name no connector uses: other tests' governors do not mix in


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"api": API, **labels})


def test_waits_limit_answers_budget_and_pause_are_exported_per_api() -> None:
    clock = FakeClock()
    governor = Governor(API, [Limit("writes", 10, 60.0, frozenset({WRITE}))], clock=clock)
    for _ in range(10):  # 90% of 10: the 10th waits for the window
        with governor.permit(WRITE):
            pass
    governor.observe(429, {"Retry-After": "30"})
    refresh_governor_metrics()

    assert sample("syncd_rate_requests") == 10
    assert sample("syncd_rate_waits") == 1
    assert (sample("syncd_rate_waited_seconds") or 0) >= 60
    assert sample("syncd_rate_limited_answers") == 1
    assert sample("syncd_rate_paused_seconds") == 30
    assert sample("syncd_rate_budget_left", limit="writes") == 8  # 9 allowed, 1 in this window
    assert f'syncd_rate_limited_answers{{api="{API}"}} 1.0' in generate_latest(REGISTRY).decode()
