"""One rate governor per API account: every request of that account asks it first.

A governor knows the account's documented limits (each a number of requests per window,
applying to some kinds of request: reads, writes, searches), keeps a margin under each, and
counts a request from the moment it is let through until its answer is in. When any answer
says "slow down" (Retry-After, an exhausted `x-ratelimit-remaining`, HubSpot's
`X-HubSpot-RateLimit-Remaining: 0`, Airtable's 429 lock-out) every kind of request pauses,
not only the one that got the answer.

On several replicas each one takes `1/N` of every budget, N being the number of live
replicas that `share()` reports: no shared counter to keep consistent, and a dead replica's
share comes back as soon as its heartbeat ages out.

The clock is injected, so with a FakeClock a test of "1,000 creates at 80/min" runs in
milliseconds: waiting advances the clock instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from syncd.clock import Clock, SystemClock
from syncd.http_errors import retry_after_seconds

READ, WRITE, SEARCH = "read", "write", "search"
ALL_KINDS = frozenset({READ, WRITE, SEARCH})
DEFAULT_MARGIN = 0.9

# Every governor alive, for /metrics (waits, 429s received, budget left, by API).
GOVERNORS: weakref.WeakSet[Governor] = weakref.WeakSet()


@dataclass(frozen=True)
class Limit:
    """At most `requests` requests of the kinds in `applies_to` in any `per_seconds` window."""

    name: str
    requests: int
    per_seconds: float
    applies_to: frozenset[str] = ALL_KINDS

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError(f"limit {self.name}: requests must be >= 1 and per_seconds > 0")
        if not self.applies_to <= ALL_KINDS:
            raise ValueError(f"limit {self.name}: kinds are {sorted(ALL_KINDS)}")


@dataclass
class _Window:
    limit: Limit
    starts: deque[float] = field(default_factory=deque)  # when each counted request started

    def expire(self, now: float) -> None:
        while self.starts and self.starts[0] <= now - self.limit.per_seconds:
            self.starts.popleft()


class GovernorStopped(Exception):
    """A permit was asked for after `Governor.close()` (the daemon is stopping)."""


class Governor:
    """The rate governor of one (API, credential)."""

    def __init__(
        self,
        api: str,
        limits: list[Limit],
        *,
        clock: Clock | None = None,
        margin: float = DEFAULT_MARGIN,
        lockout_seconds: float = 0.0,
        default_retry_after: float = 1.0,
        share: Callable[[], int] = lambda: 1,
    ) -> None:
        if not 0 < margin <= 1:
            raise ValueError("margin must be in (0, 1]")
        self.api = api
        self.clock = clock or SystemClock()
        self.margin = margin
        self.lockout_seconds = lockout_seconds  # Airtable: a 429 means 30 s for everyone
        self.default_retry_after = default_retry_after
        self.share = share
        self._windows = [_Window(limit) for limit in limits]
        self._cond = threading.Condition()
        self._paused_until = 0.0
        self._closed = False
        self.in_flight = 0
        self.waits = 0
        self.waited_seconds = 0.0
        self.throttled = 0  # "slow down" answers received: the goal is 0
        self.last_pause_reason = ""
        GOVERNORS.add(self)

    # -- asking -------------------------------------------------------------------------

    def allowed(self, limit: Limit) -> int:
        """How many requests this replica may start per window of `limit`: the margin under
        the documented number, divided among the live replicas, never below one."""
        replicas = max(1, self.share())
        return max(1, math.floor(limit.requests * self.margin / replicas))

    def wait_needed(self, kind: str = READ) -> float:
        """Seconds a request of `kind` would wait if asked now (0: it would go at once).
        The executor asks this before marking an action in flight, so that an action that
        only waits for its turn keeps its lease free for others."""
        with self._cond:
            return self._wait(kind, self._now())

    def acquire(self, kind: str = READ, *, max_wait: float | None = None) -> None:
        """Block until a request of `kind` may start, then count it as started and in flight.
        With `max_wait`, give up (TimeoutError) instead of waiting longer than that."""
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        waited = 0.0
        while True:
            with self._cond:
                if self._closed:
                    raise GovernorStopped(self.api)
                now = self._now()
                wait = self._wait(kind, now)
                if wait <= 0:
                    for window in self._windows:
                        if kind in window.limit.applies_to:
                            window.starts.append(now)
                    self.in_flight += 1
                    if waited:
                        self.waits += 1
                        self.waited_seconds += waited
                    return
            if max_wait is not None and waited + wait > max_wait:
                raise TimeoutError(f"{self.api}: no request budget within {max_wait:.1f}s")
            self._sleep(wait)
            waited += wait

    def release(self) -> None:
        """The request's answer is in (or it failed): it no longer counts as in flight."""
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            self._cond.notify_all()

    @contextmanager
    def permit(self, kind: str = READ, *, max_wait: float | None = None) -> Iterator[None]:
        """`with governor.permit("write"): send()`: acquire before, release after."""
        self.acquire(kind, max_wait=max_wait)
        try:
            yield
        finally:
            self.release()

    # -- listening ----------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str] | None) -> float | None:
        """Read an answer's rate-limit signals; pause everything when it says so. Returns
        the pause in seconds, or None when the answer asked for none."""
        lowered = {k.lower(): str(v) for k, v in (headers or {}).items()}
        now_dt = self.clock.now()
        wait = _server_wait(status, lowered, now_dt)
        if status == 429 or (status == 403 and wait is not None):
            self.throttled += 1
            if wait is None:
                wait = self.default_retry_after
            wait = max(wait, self.lockout_seconds)
        if wait is None:
            return None
        self.pause(wait, f"HTTP {status}" if status >= 400 else "budget exhausted")
        return wait

    def pause(self, seconds: float, reason: str) -> None:
        """Nobody of this account sends anything for `seconds`."""
        with self._cond:
            until = self._now() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                self.last_pause_reason = reason

    def close(self) -> None:
        """Wake every waiter with GovernorStopped (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reporting ----------------------------------------------------------------------

    def budget_left(self) -> dict[str, int]:
        """Per limit, how many more requests this replica may start in the current window."""
        with self._cond:
            now = self._now()
            out = {}
            for window in self._windows:
                window.expire(now)
                out[window.limit.name] = max(0, self.allowed(window.limit) - len(window.starts))
            return out

    def paused_for(self) -> float:
        with self._cond:
            return max(0.0, self._paused_until - self._now())

    # -- inside -------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _wait(self, kind: str, now: float) -> float:
        """Seconds until a request of `kind` fits every window and no pause is on (lock held)."""
        wait = self._paused_until - now
        for window in self._windows:
            if kind not in window.limit.applies_to:
                continue
            window.expire(now)
            allowed = self.allowed(window.limit)
            if len(window.starts) >= allowed:
                # The oldest start that must leave the window before one more fits.
                oldest = window.starts[len(window.starts) - allowed]
                wait = max(wait, oldest + window.limit.per_seconds - now)
        return max(0.0, wait)

    def _sleep(self, seconds: float) -> None:
        seconds = max(seconds, 0.001)
        if isinstance(self.clock, SystemClock):
            with self._cond:  # woken early by close()
                self._cond.wait(seconds)
        else:
            self.clock.sleep(seconds)


def _server_wait(status: int, lowered: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the server asked us to wait, from any of the headers the four APIs use."""
    after = retry_after_seconds(lowered, now)
    if after is not None and status in (403, 429, 503):
        return after
    # GitHub (and Jira's X-RateLimit-*): the budget is spent until the reset instant.
    if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
        reset = _reset_instant(lowered["x-ratelimit-reset"], now)
        if reset is not None:
            return reset
    # HubSpot: nothing left in the current interval.
    if lowered.get("x-hubspot-ratelimit-remaining") == "0":
        try:
            return int(lowered["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
        except (KeyError, ValueError):
            return 10.0
    return None


def _reset_instant(value: str, now: datetime) -> float | None:
    """`x-ratelimit-reset` as epoch seconds (GitHub) or an ISO 8601 instant (Jira)."""
    try:
        return max(0.0, float(value) - now.timestamp())
    except ValueError:
        pass
    try:
        return max(0.0, (datetime.fromisoformat(value.replace("Z", "+00:00")) - now)
                   .total_seconds())
    except ValueError:
        return None
