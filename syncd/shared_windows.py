"""A governor's windows kept in the store (PostgreSQL), so replicas share one budget.

An API counts the requests of every replica together: three replicas each at the limit
send three times the limit. So on PostgreSQL every governor keeps its sliding windows and
its pause in one row of the `state` table (scope `governor`, key `<api>:<account>`), locked
FOR UPDATE while a start is counted: the replicas together stay under the limit, however
many are alive. A replica that joins or is killed changes nothing: a start is stamped
before its request is sent, and a killed replica's stamps simply age out. A 429 seen by
one replica pauses them all.

Why this and not "each replica takes 1/N": N changes as replicas start and die, each learns
it late (heartbeats), and while it is late the sum goes over; and a replica that is idle
keeps its 1/N unused while the busy one waits. One row lock per request costs about a
millisecond, far below the APIs' own pace (GitHub allows 1.3 writes/s, Airtable 5/s).

A start is stamped just before its request leaves and reaches the server a little later,
and replicas' clocks differ slightly: each window is widened by `travel_seconds` (at most
a tenth of the window, so Airtable's 1 s window does not lose half its budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.governor import Applicable, Limit, window_wait
from syncd.store.db import Store
from syncd.store.state import lock_value, replace_value

SCOPE = "governor"
TRAVEL_SECONDS = 1.0


class StoreWindows:
    """The `Windows` of one governor in a `state` row shared by every replica."""

    def __init__(self, store: Store, key: str, travel_seconds: float = TRAVEL_SECONDS) -> None:
        self.store = store
        self.key = key
        self.travel_seconds = travel_seconds

    def _span(self, limit: Limit) -> float:
        return limit.per_seconds + min(self.travel_seconds, limit.per_seconds / 10)

    def take(self, limits: Sequence[Applicable], now: float) -> float:
        return self._decide(limits, now, stamp=True)

    def peek(self, limits: Sequence[Applicable], now: float) -> float:
        return self._decide(limits, now, stamp=False)

    def _decide(self, limits: Sequence[Applicable], now: float, *, stamp: bool) -> float:
        with self.store.tx() as conn:
            row = self._lock_row(conn, lock=stamp)
            wait = row["paused_until"] - now
            windows, answers = row["starts"], row["answers"]
            for limit, allowed, cost, documented in limits:
                span = self._span(limit)
                starts = [s for s in windows.get(limit.name, []) if s > now - span]
                windows[limit.name] = starts
                wait = max(wait, window_wait(starts, allowed, span, now, cost))
                answered = sorted(
                    s for s in answers.get(documented.name, []) if s > now - documented.per_seconds
                )
                answers[documented.name] = answered
                wait = max(
                    wait,
                    window_wait(answered, documented.requests, documented.per_seconds, now, cost),
                )
            if wait <= 0 and stamp:
                for limit, _, cost, documented in limits:
                    windows[limit.name].extend([now] * cost)
                    answers[documented.name].extend([now] * cost)
                self._save(conn, row, now)
            return max(0.0, wait)

    def finish(self, limits: Sequence[Applicable], started: float, now: float) -> None:
        """The answer is in: its units count from `now` in the documented windows."""
        with self.store.tx() as conn:
            row = self._lock_row(conn, lock=True)
            for _, _, cost, documented in limits:
                answered = row["answers"].setdefault(documented.name, [])
                for _ in range(cost):
                    if started in answered:
                        answered.remove(started)
                    answered.append(now)
                row["answers"][documented.name] = sorted(
                    s for s in answered if s > now - documented.per_seconds
                )
            self._save(conn, row, now)

    def pause(self, until: float) -> None:
        with self.store.tx() as conn:
            row = self._lock_row(conn, lock=True)
            if until > row["paused_until"]:
                row["paused_until"] = until
                self._save(conn, row, until)

    def paused_until(self) -> float:
        with self.store.tx() as conn:
            return float(self._lock_row(conn, lock=False)["paused_until"])

    def used(self, limit: Limit, now: float) -> int:
        with self.store.tx() as conn:
            starts = self._lock_row(conn, lock=False)["starts"].get(limit.name, [])
        return sum(1 for s in starts if s > now - self._span(limit))

    def _lock_row(self, conn: Any, *, lock: bool) -> dict[str, Any]:
        value = (
            lock_value(
                self.store,
                conn,
                SCOPE,
                self.key,
                {"starts": {}, "answers": {}, "paused_until": 0},
                lock=lock,
            )
            or {}
        )
        return {
            "starts": {k: [float(s) for s in v] for k, v in dict(value.get("starts", {})).items()},
            "answers": {
                k: [float(s) for s in v] for k, v in dict(value.get("answers", {})).items()
            },
            "paused_until": float(value.get("paused_until", 0)),
        }

    def _save(self, conn: Any, row: dict[str, Any], now: float) -> None:
        replace_value(conn, SCOPE, self.key, row, int(now * 1000))


def share_governors(store: Store, governors: Sequence[Any]) -> None:
    """Replicas on PostgreSQL: move each governor's windows into the store. A governor's
    key is its API and account (an id or a hash, never a secret)."""
    for governor in governors:
        governor.share_through(StoreWindows(store, f"{governor.api}:{governor.account}"))
