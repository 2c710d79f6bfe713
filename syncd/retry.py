"""When to try a failed action (or inbox delivery) again: a pure function of the attempt.

Exponential backoff with jitter, never sooner than the server's `Retry-After`. Nothing here
sleeps or loops: the result is stored as `next_attempt_at`, so a restart keeps the schedule
and the executor (not a retry library) does the trying again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_DOUBLINGS = 1000  # 2.0 ** 1000 still fits a float; every cap is reached long before


def backoff_seconds(
    attempt: int, *, base: float, cap: float, jitter: float = 0.0, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based; less counts as 1):
    `base * 2**(attempt - 1) + jitter`, at most `cap`, at least `retry_after` (the server's
    word beats the cap). `jitter` is the random part, already drawn by the caller."""
    doublings = min(max(1, attempt) - 1, _MAX_DOUBLINGS)
    seconds = max(0.0, min(base * 2.0**doublings + jitter, cap))
    if retry_after is not None:
        seconds = max(seconds, float(retry_after))
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    jitter_seconds: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), with a jitter of
        up to `jitter_seconds` so that retries of one outage spread out."""
        return backoff_seconds(
            attempt,
            base=self.base_seconds,
            cap=self.max_seconds,
            jitter=random.uniform(0, self.jitter_seconds),
            retry_after=retry_after,
        )

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
