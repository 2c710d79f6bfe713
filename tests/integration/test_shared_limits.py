"""Replicas share one rate budget through the store (syncd.shared_limits): two limiters of
the same account in two "processes" (own local limiters, one database) never together
exceed the limit, and a 429's wait told to one holds the other too."""

from __future__ import annotations

from syncd.clock import FakeClock, to_ms
from syncd.ratelimit import RateLimiter
from syncd.shared_limits import SharedRateLimiter
from syncd.store.db import Store

LIMIT, PERIOD, MARGIN = 5, 10.0, 1.0


def two_replicas(store: Store, clock: FakeClock) -> list[SharedRateLimiter]:
    return [SharedRateLimiter(store, "api:account", RateLimiter(LIMIT, PERIOD, clock), clock,
                              margin_seconds=MARGIN) for _ in range(2)]


def test_replicas_together_keep_to_one_limit(store: Store) -> None:
    clock = FakeClock()
    replicas = two_replicas(store, clock)
    stamps: list[int] = []
    for i in range(40):  # each alone would allow 5 per 10 s: together still 5 per 11 s
        replicas[i % 2].acquire()
        stamps.append(to_ms(clock.now()))
    window = int((PERIOD + MARGIN) * 1000)
    busiest = max(sum(1 for s in stamps if start <= s < start + window) for start in stamps)
    assert busiest == LIMIT
    elapsed = (stamps[-1] - stamps[0]) / 1000
    assert elapsed >= (40 // LIMIT - 1) * (PERIOD + MARGIN)  # waited, not just counted


def test_a_wait_told_to_one_replica_holds_them_all(store: Store) -> None:
    clock = FakeClock()
    first, second = two_replicas(store, clock)
    first.acquire()
    first.block_for(30)  # a 429 with Retry-After: 30 seen by the first replica
    started = to_ms(clock.now())
    second.acquire()
    assert to_ms(clock.now()) - started >= 30_000
