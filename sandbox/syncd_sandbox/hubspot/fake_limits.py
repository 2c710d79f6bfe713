"""Misbehaviour for the fake HubSpot: rate limits on an injected clock, and injected faults.

Rate limits count every request in a rolling 10 s window (search requests also in a 1 s
window, as HubSpot limits search separately). A request over a limit gets 429 with
Retry-After and is counted in `over_limit`, which is what the client-side limiter must keep at 0.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass

from syncd.clock import Clock
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse, ResetConnection

GENERAL_WINDOW = 10.0
SEARCH_WINDOW = 1.0


def error_body(message: str, category: str = "VALIDATION_ERROR") -> dict[str, object]:
    return {
        "status": "error",
        "message": message,
        "category": category,
        "correlationId": "00000000-0000-4000-8000-000000000000",
    }


class RateLimits:
    def __init__(self, clock: Clock, general_limit: int = 100, search_limit: int = 4) -> None:
        self.clock = clock
        self.general_limit = general_limit
        self.search_limit = search_limit
        self.over_limit = 0  # requests refused with 429 because a limit was exceeded
        self.early_requests = 0  # requests that arrived before a Retry-After given had passed
        self._retry_until = 0.0
        self._general: deque[float] = deque()
        self._search: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, request: FakeRequest) -> FakeResponse | None:
        """Count the request, or refuse it with 429 when a window is full."""
        is_search = request.path.endswith("/search")
        with self._lock:
            now = self.clock.now().timestamp()
            if now < self._retry_until:
                self.early_requests += 1
            for window, span in ((self._general, GENERAL_WINDOW), (self._search, SEARCH_WINDOW)):
                while window and window[0] <= now - span:
                    window.popleft()
            wait = 0.0
            policy = ""
            if len(self._general) >= self.general_limit:
                wait, policy = self._general[0] + GENERAL_WINDOW - now, "TEN_SECONDLY_ROLLING"
            elif is_search and len(self._search) >= self.search_limit:
                wait, policy = self._search[0] + SEARCH_WINDOW - now, "SECONDLY"
            if policy:
                self.over_limit += 1
                body = error_body(f"You have reached your {policy.lower()} limit.", "RATE_LIMITS")
                body["policyName"] = policy
                seconds = max(1, round(wait + 0.5))
                self._retry_until = max(self._retry_until, now + seconds)
                return FakeResponse(429, body, {"Retry-After": str(seconds)})
            self._general.append(now)
            if is_search:
                self._search.append(now)
        return None

    def headers(self, request: FakeRequest) -> dict[str, str]:
        if request.path.endswith("/search"):
            return {}  # HubSpot sends no rate-limit headers on search
        with self._lock:
            remaining = max(0, self.general_limit - len(self._general))
        return {
            "X-HubSpot-RateLimit-Max": str(self.general_limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(GENERAL_WINDOW * 1000)),
        }


@dataclass
class Fault:
    status: int  # 0: reset the connection
    remaining: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    retry_after: float | None = None
    applied_first: bool = False  # perform the call, then answer the error ("502 after write")

    def matches(self, request: FakeRequest) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == request.method)
            and (self.path is None or bool(self.path.search(request.path)))
        )

    def response(self) -> FakeResponse:
        if self.status == 0:
            raise ResetConnection()
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return FakeResponse(self.status, error_body(f"injected {self.status}", "INJECTED"), headers)


class Faults:
    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.pending.append(fault)

    def take(self, request: FakeRequest, applied_first: bool) -> Fault | None:
        with self._lock:
            for fault in self.pending:
                if fault.applied_first == applied_first and fault.matches(request):
                    fault.remaining -= 1
                    return fault
        return None
