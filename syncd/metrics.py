"""Prometheus metrics. Counters are bumped where things happen; gauges that describe the
store (queue depth, dead actions, poll lag) are read from it when /metrics is scraped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

WEBHOOKS = Counter(
    "syncd_webhooks_total",
    "Webhook deliveries by connector and outcome",
    ["connector", "outcome"],
    registry=REGISTRY,
)
EVENTS = Counter("syncd_events_total", "Events recorded", ["source"], registry=REGISTRY)
ACTIONS_FINISHED = Counter(
    "syncd_actions_finished_total",
    "Action attempts by outcome",
    ["connector", "outcome"],
    registry=REGISTRY,
)
RULE_FAILURES = Counter(
    "syncd_rule_failures_total",
    "Rule failures: render, condition (at planning) or action (dead at its target)",
    ["rule", "kind"],
    registry=REGISTRY,
)
POLLS = Counter("syncd_polls_total", "Poll cycles", ["source", "outcome"], registry=REGISTRY)
ACTIONS_BY_STATUS = Gauge(
    "syncd_actions", "Actions in the store by status", ["status"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge("syncd_queue_depth", "Actions due or waiting to retry", registry=REGISTRY)
INBOX_PENDING = Gauge(
    "syncd_inbox_pending", "Webhook deliveries not yet processed", registry=REGISTRY
)
POLL_LAG = Gauge(
    "syncd_poll_lag_seconds",
    "Seconds since the last successful poll",
    ["source", "stream"],
    registry=REGISTRY,
)
# The rate governors (syncd.governor), summed over the accounts of each API.
GOVERNOR_WAITS = Gauge(
    "syncd_rate_waits",
    "Requests that waited for their API's rate governor",
    ["api"],
    registry=REGISTRY,
)
GOVERNOR_WAITED = Gauge(
    "syncd_rate_waited_seconds",
    "Seconds requests waited for their API's rate governor",
    ["api"],
    registry=REGISTRY,
)
GOVERNOR_THROTTLED = Gauge(
    "syncd_rate_limited_answers",
    "Rate-limit answers received (429, GitHub's 403 with Retry-After): should stay 0",
    ["api"],
    registry=REGISTRY,
)
GOVERNOR_SENT = Gauge(
    "syncd_rate_requests", "Requests let through by the rate governor", ["api"], registry=REGISTRY
)
GOVERNOR_BUDGET = Gauge(
    "syncd_rate_budget_left",
    "Requests that may still start in the "
    "current window, per API and limit (the lowest over its accounts)",
    ["api", "limit"],
    registry=REGISTRY,
)
GOVERNOR_PAUSED = Gauge(
    "syncd_rate_paused_seconds",
    "Seconds until the API may be called "
    "again after a rate-limit answer (the longest over its accounts)",
    ["api"],
    registry=REGISTRY,
)
