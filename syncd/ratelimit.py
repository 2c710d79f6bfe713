"""Client-side rate limits: a sliding-window limiter that blocks until a call is allowed.

Every connector keeps a limiter per account (or per base, per site) so a backlog drains at
the documented rate, not above it. The clock is injected: with a FakeClock, `acquire` advances
time instead of sleeping, so tests of "1,000 creates at 80/min" run in milliseconds.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque

from syncd.clock import Clock, SystemClock

# Every limiter alive, for the /metrics gauge of waits (by limiter name).
LIMITERS: weakref.WeakSet[RateLimiter] = weakref.WeakSet()


class RateLimiter:
    """At most `limit` calls in any window of `period` seconds."""

    def __init__(
        self, limit: int, period: float, clock: Clock | None = None, name: str = ""
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.clock = clock or SystemClock()
        self.name = name
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self.waits = 0  # how many times a caller had to wait (exported as a metric)
        self.waited_seconds = 0.0
        LIMITERS.add(self)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def acquire(self) -> None:
        """Block until one more call fits in the window, then count it."""
        while True:
            with self._lock:
                now = self._now()
                while self._calls and self._calls[0] <= now - self.period:
                    self._calls.popleft()
                wait = self._blocked_until - now
                if wait <= 0 and len(self._calls) < self.limit:
                    self._calls.append(now)
                    return
                if wait <= 0:
                    wait = self._calls[0] + self.period - now
            self.waits += 1
            self.waited_seconds += wait
            self.clock.sleep(max(wait, 0.001))

    def block_for(self, seconds: float) -> None:
        """The server said "wait" (429 Retry-After, Airtable's 30 s lock-out): nobody calls
        until then."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._now() + seconds)
