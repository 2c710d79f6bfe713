"""One rate budget for all replicas: a sliding window kept in the store (PostgreSQL).

Each process limits its own calls (syncd.ratelimit), but an API counts the calls of every
replica together: three replicas each at the limit send three times the limit. So on
PostgreSQL every call of a shared account also takes a slot in one window row of the
`state` table (scope `ratelimit`), locked FOR UPDATE while it is counted: the replicas
together stay under the limit, however many are alive, and a replica that joins or is
killed changes nothing (a slot is stamped before the request is sent; a killed replica's
slots simply age out).

Why this and not "each replica takes 1/N": N changes as replicas start and die, each learns
it late (heartbeats), and while it is late the sum goes over. One row lock per request costs
a millisecond, far below the APIs' own pace.

A slot is stamped just before its request leaves, and the request reaches the server a
little later; `margin_seconds` widens the window by that much, so a late request can never
make the server count one too many. This is a stopgap until one governor per API account
(issue 16) replaces it.
"""

from __future__ import annotations

from typing import Any

from syncd.clock import Clock, to_ms
from syncd.ratelimit import RateLimiter
from syncd.store import state
from syncd.store.db import Store

SCOPE = "ratelimit"
MARGIN_SECONDS = 1.0


class SharedRateLimiter:
    """At most `limit` calls in any window of `period + margin` seconds, across processes;
    `local` (this process's limiter) is passed first, as before."""

    def __init__(self, store: Store, key: str, local: RateLimiter, clock: Clock,
                 margin_seconds: float = MARGIN_SECONDS) -> None:
        self.store = store
        self.key = key
        self.local = local
        self.clock = clock
        self.limit = local.limit
        self.period = local.period
        self.window_ms = int((local.period + margin_seconds) * 1000)
        self.name = local.name

    @property
    def waits(self) -> int:
        return self.local.waits

    @property
    def waited_seconds(self) -> float:
        return self.local.waited_seconds

    def acquire(self) -> None:
        self.local.acquire()
        while True:
            wait_ms = self._take()
            if wait_ms <= 0:
                return
            self.local.waits += 1
            self.local.waited_seconds += wait_ms / 1000
            self.clock.sleep(max(wait_ms, 1) / 1000)

    def block_for(self, seconds: float) -> None:
        """The server said "wait" (429 Retry-After): no replica calls until then."""
        self.local.block_for(seconds)
        until = to_ms(self.clock.now()) + int(seconds * 1000)
        with self.store.tx() as conn:
            window = self._lock_row(conn)
            window["blocked_until"] = max(window["blocked_until"], until)
            self._save(conn, window)

    def _take(self) -> int:
        """Take a slot (0) or say how long to wait (ms) before asking again."""
        with self.store.tx() as conn:
            window = self._lock_row(conn)
            now = to_ms(self.clock.now())
            calls = [c for c in window["calls"] if c > now - self.window_ms]
            wait = window["blocked_until"] - now
            if wait <= 0 and len(calls) < self.limit:
                window["calls"] = [*calls, now]
                self._save(conn, window)
                return 0
            if wait <= 0:
                wait = calls[0] + self.window_ms - now
            return max(wait, 1)

    def _lock_row(self, conn: Any) -> dict[str, Any]:
        value = state.lock_value(self.store, conn, SCOPE, self.key,
                                 {"calls": [], "blocked_until": 0}) or {}
        return {"calls": list(value.get("calls", [])),
                "blocked_until": int(value.get("blocked_until", 0))}

    def _save(self, conn: Any, window: dict[str, Any]) -> None:
        state.replace_value(conn, SCOPE, self.key, window, to_ms(self.clock.now()))


def sharer(store: Store, clock: Clock) -> Any:
    """What the engine hands a connector's `share_limits`: wrap a limiter under a key."""

    def share(local: RateLimiter, key: str) -> SharedRateLimiter:
        return SharedRateLimiter(store, key, local, clock)

    return share
