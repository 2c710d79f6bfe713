"""Errors grouped by what happens next (the executor and the inbox decide on the class alone)."""

from __future__ import annotations


class SyncdError(Exception):
    """Root of syncd's own errors."""


class ConfigError(SyncdError):
    """The configuration is invalid; `problems` lists every problem found, not only the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class ActionError(SyncdError):
    """A connector call failed. Subclasses say whether trying again can help."""


class TransientError(ActionError):
    """Worth retrying later: 5xx, 429, timeouts, connection resets.

    `retry_after` (seconds) is the server's own word (Retry-After, rate-limit reset) and is
    honoured as a lower bound by the retry policy.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ActionError):
    """Retrying cannot help: 4xx other than 429, invalid parameters, refused header values."""


class UncertainError(TransientError):
    """The request may or may not have been applied (a 502 after sending, a reset connection).

    The executor always looks for an existing effect before trying again, so this is retried
    like any transient error; it exists so that at-most-once actions can refuse to retry.
    """


class WebhookRejected(SyncdError):
    """A webhook delivery is refused. `status` is the HTTP status to answer (4xx)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
