"""Gauges read from the store when /metrics is scraped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.metrics import ACTIONS_BY_STATUS, INBOX_PENDING, POLL_LAG, QUEUE_DEPTH

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
