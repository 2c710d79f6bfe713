"""When to try a failed action (or inbox delivery) again: a pure function of the attempt.

Exponential backoff with jitter (tenacity's wait strategy), never sooner than the server's
`Retry-After`. The result is stored as `next_attempt_at`, so a restart keeps the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_exponential_jitter


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    jitter_seconds: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        wait = wait_exponential_jitter(
            multiplier=self.base_seconds, max=self.max_seconds, jitter=self.jitter_seconds
        )
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempt)
        seconds = float(wait(state))
        if retry_after is not None:
            seconds = max(seconds, float(retry_after))
        return seconds

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
