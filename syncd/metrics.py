"""Prometheus metrics. Counters are bumped where things happen; gauges that describe the
store (queue depth, dead actions, poll lag) are read from it when /metrics is scraped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

WEBHOOKS = Counter(
    "syncd_webhooks_total", "Webhook deliveries by connector and outcome",
    ["connector", "outcome"], registry=REGISTRY,
)
EVENTS = Counter("syncd_events_total", "Events recorded", ["source"], registry=REGISTRY)
ACTIONS_FINISHED = Counter(
    "syncd_actions_finished_total", "Action attempts by outcome", ["connector", "outcome"],
    registry=REGISTRY,
)
RULE_FAILURES = Counter(
    "syncd_rule_failures_total", "Rule failures: render, condition (at planning) or action "
    "(dead at its target)", ["rule", "kind"], registry=REGISTRY)
POLLS = Counter("syncd_polls_total", "Poll cycles", ["source", "outcome"], registry=REGISTRY)
ACTIONS_BY_STATUS = Gauge(
    "syncd_actions", "Actions in the store by status", ["status"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge("syncd_queue_depth", "Actions due or waiting to retry", registry=REGISTRY)
INBOX_PENDING = Gauge("syncd_inbox_pending", "Webhook deliveries not yet processed",
                      registry=REGISTRY)
POLL_LAG = Gauge("syncd_poll_lag_seconds", "Seconds since the last successful poll",
                 ["source", "stream"], registry=REGISTRY)
RATE_LIMIT_WAITS = Gauge("syncd_rate_limiter_waits", "Times a client-side limiter made a "
                         "call wait", ["limiter"], registry=REGISTRY)
RATE_LIMIT_WAITED = Gauge("syncd_rate_limiter_waited_seconds", "Seconds calls waited for a "
                          "client-side limiter", ["limiter"], registry=REGISTRY)
