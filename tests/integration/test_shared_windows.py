"""Replicas share one budget through the store (syncd.shared_windows): two governors of the
same account in two "processes" (one database) never together exceed the limit, and a
429's wait seen by one holds the other too."""

from __future__ import annotations

from syncd.clock import FakeClock
from syncd.governor import READ, WRITE, Governor, Limit
from syncd.shared_windows import StoreWindows
from syncd.store.db import Store

LIMIT, PERIOD = 10, 10.0  # with the 0.9 margin: 9 starts per window


def two_replicas(store: Store, clock: FakeClock) -> list[Governor]:
    return [
        Governor(
            "hubspot",
            [Limit("general", LIMIT, PERIOD)],
            clock=clock,
            windows=StoreWindows(store, "hubspot:acct", travel_seconds=1.0),
        )
        for _ in range(2)
    ]


def test_replicas_together_keep_to_one_limit(store: Store) -> None:
    clock = FakeClock()
    replicas = two_replicas(store, clock)
    stamps: list[float] = []
    for i in range(60):  # each alone would allow 9 per window: together still 9
        with replicas[i % 2].permit(WRITE):
            stamps.append(clock.now().timestamp())
    span = PERIOD + 1.0  # the window widened by the travel time
    busiest = max(sum(1 for s in stamps if start <= s < start + span) for start in stamps)
    print(f"two replicas, 60 requests: at most {busiest} in any {span:.0f} s (limit {LIMIT})")
    assert busiest == 9
    assert stamps[-1] - stamps[0] >= (60 // 9 - 1) * span  # waited, not just counted
    assert replicas[0].budget_left() == replicas[1].budget_left()


def test_a_wait_seen_by_one_replica_holds_them_all(store: Store) -> None:
    clock = FakeClock()
    first, second = two_replicas(store, clock)
    with first.permit(READ):
        first.observe(429, {"Retry-After": "30"})
    assert second.wait_needed(WRITE) == 30
    started = clock.now().timestamp()
    second.acquire(WRITE)
    second.release()
    assert clock.now().timestamp() - started >= 30
