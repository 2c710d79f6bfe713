"""Jira Cloud's rate limits in the fake: a cost budget and a burst limit, 429 + Retry-After.

Jira Cloud limits by cost: every request spends points from a budget that refills over
time (a write costs more than a read), with per-second bursts on top; beyond either, 429
with `Retry-After` and `X-RateLimit-*`. Atlassian does not publish the numbers, so the
fake's are the connector's defaults (`rate_limit_per_second`, `cost_budget` per
`cost_window_seconds`, `write_cost`), and both are configurable.

`over_limit` counts requests refused because a limit was exceeded, `early_requests` the
requests that arrived before a Retry-After given earlier had passed: a well-behaved client
keeps both at 0.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime

from syncd.clock import Clock
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse

BURST_PER_SECOND = 10
COST_BUDGET = 100
COST_WINDOW_SECONDS = 10.0
WRITE_COST = 2
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class JiraRateLimit:
    def __init__(
        self,
        clock: Clock,
        *,
        burst_per_second: int = BURST_PER_SECOND,
        cost_budget: int = COST_BUDGET,
        cost_window: float = COST_WINDOW_SECONDS,
        write_cost: int = WRITE_COST,
    ) -> None:
        self.clock = clock
        self.burst_per_second = burst_per_second
        self.cost_budget = cost_budget
        self.cost_window = cost_window
        self.write_cost = write_cost
        self.over_limit = 0
        self.early_requests = 0
        self.served = 0
        self._burst: deque[float] = deque()
        self._costs: deque[tuple[float, int]] = deque()
        self._retry_until = 0.0
        self._lock = threading.Lock()

    def check(self, request: FakeRequest) -> FakeResponse | None:
        if not request.path.startswith("/rest/"):
            return None
        cost = self.write_cost if request.method in WRITE_METHODS else 1
        with self._lock:
            now = self.clock.now().timestamp()
            if now < self._retry_until:
                self.early_requests += 1
            while self._burst and self._burst[0] <= now - 1.0:
                self._burst.popleft()
            while self._costs and self._costs[0][0] <= now - self.cost_window:
                self._costs.popleft()
            spent = sum(c for _, c in self._costs)
            wait = 0.0
            if len(self._burst) >= self.burst_per_second:
                wait = self._burst[0] + 1.0 - now
            if spent + cost > self.cost_budget:
                freed, moment = 0, now
                for stamp, c in self._costs:  # until enough of the spent budget refills
                    freed += c
                    moment = stamp
                    if spent - freed + cost <= self.cost_budget:
                        break
                wait = max(wait, moment + self.cost_window - now)
            if wait > 0:
                self.over_limit += 1
                seconds = max(1, int(wait + 0.999))
                self._retry_until = max(self._retry_until, now + seconds)
                reset = datetime.fromtimestamp(now + seconds, UTC).isoformat()
                return FakeResponse(
                    429,
                    {"errorMessages": ["Rate limit exceeded."]},
                    {
                        "Retry-After": str(seconds),
                        "X-RateLimit-Limit": str(self.cost_budget),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": reset,
                        "RateLimit-Reason": "jira-cost-based",
                    },
                )
            self._burst.append(now)
            self._costs.append((now, cost))
            self.served += 1
        return None
