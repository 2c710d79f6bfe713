"""Misbehaviour of the fake Airtable: the 5 requests/s limit with its 30 s lock-out, and
injected faults (refuse before applying, or apply and then answer 502 / reset)."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from syncd_sandbox.fakeserver import FakeRequest, FakeResponse, ResetConnection

RATE_LIMIT = 5  # requests per second per base
LOCKOUT_SECONDS = 30.0
_BASE_IN_PATH = re.compile(r"^/v0/(?:meta/bases/|bases/)?(app[A-Za-z0-9]+)")


def base_of(path: str) -> str | None:
    match = _BASE_IN_PATH.match(path)
    return match.group(1) if match else None


def rate_limited_response() -> FakeResponse:
    return FakeResponse(
        429,
        {
            "errors": [
                {
                    "error": "RATE_LIMIT_REACHED",
                    "message": "Rate limit exceeded. Please try again later",
                }
            ]
        },
    )


class BaseRateLimit:
    """Airtable's rule: 5 requests per second per base; over it, 429 and 30 s of 429s.

    `over_limit` counts the requests that arrived above the limit or during a lock-out
    (a well-behaved client keeps it at zero); a forced 429 does not count.
    """

    def __init__(self) -> None:
        self.served: deque[float] = deque()
        self.locked_until = 0.0
        self.over_limit = 0
        self.forced = 0

    def check(self, now: float) -> FakeResponse | None:
        while self.served and self.served[0] <= now - 1.0:
            self.served.popleft()
        if self.forced:
            self.forced -= 1
            self.locked_until = max(self.locked_until, now + LOCKOUT_SECONDS)
            return rate_limited_response()
        if now < self.locked_until or len(self.served) >= RATE_LIMIT:
            self.over_limit += 1
            self.locked_until = max(self.locked_until, now + LOCKOUT_SECONDS)
            return rate_limited_response()
        self.served.append(now)
        return None


@dataclass
class Fault:
    """The next `count` requests matching `method` and `path` (a regex) fail.

    applied=False: refused before the route runs (`status`). applied=True: the route runs
    (the write happens), then the answer is replaced by `status`, or the connection is reset
    when `status` is None.
    """

    method: str
    path: str
    status: int | None = 502
    applied: bool = True
    count: int = 1

    def matches(self, request: FakeRequest) -> bool:
        return (
            self.count > 0
            and request.method == self.method.upper()
            and re.search(self.path, request.path) is not None
        )

    def answer(self) -> FakeResponse:
        self.count -= 1
        if self.status is None:
            raise ResetConnection()
        return FakeResponse(
            self.status, {"error": {"type": "SERVER_ERROR", "message": "injected fault"}}
        )
