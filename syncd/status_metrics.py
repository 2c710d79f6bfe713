"""Gauges read from the store when /metrics is scraped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.governor import GOVERNORS
from syncd.metrics import (
    ACTIONS_BY_STATUS,
    GOVERNOR_BUDGET,
    GOVERNOR_PAUSED,
    GOVERNOR_SENT,
    GOVERNOR_THROTTLED,
    GOVERNOR_WAITED,
    GOVERNOR_WAITS,
    INBOX_PENDING,
    POLL_LAG,
    QUEUE_DEPTH,
)

if TYPE_CHECKING:
    from syncd.engine import Engine


def refresh_store_metrics(engine: Engine) -> None:
    state = engine.status()
    for status, count in state["actions"].items():
        ACTIONS_BY_STATUS.labels(status).set(count)
    QUEUE_DEPTH.set(state["queue_depth"])
    INBOX_PENDING.set(state["inbox"]["pending"])
    for poll in state["polls"]:
        POLL_LAG.labels(poll["source"], poll["stream"]).set(poll["last_poll_seconds_ago"])


def refresh_governor_metrics() -> None:
    """Waits, rate-limit answers received, requests sent and budget left, per API."""
    totals: dict[str, list[float]] = {}
    budget: dict[tuple[str, str], int] = {}
    paused: dict[str, float] = {}
    for governor in list(GOVERNORS):
        row = totals.setdefault(governor.api, [0, 0.0, 0, 0])
        row[0] += governor.waits
        row[1] += governor.waited_seconds
        row[2] += governor.throttled
        row[3] += governor.sent
        for limit, left in governor.budget_left().items():
            key = (governor.api, limit)
            budget[key] = min(budget.get(key, left), left)
        paused[governor.api] = max(paused.get(governor.api, 0.0), governor.paused_for())
    for api, (waits, waited, throttled, sent) in totals.items():
        GOVERNOR_WAITS.labels(api).set(waits)
        GOVERNOR_WAITED.labels(api).set(waited)
        GOVERNOR_THROTTLED.labels(api).set(throttled)
        GOVERNOR_SENT.labels(api).set(sent)
        GOVERNOR_PAUSED.labels(api).set(paused[api])
    for (api, limit), left in budget.items():
        GOVERNOR_BUDGET.labels(api, limit).set(left)
