"""Fault injection for the fake Jira: the failures syncd must survive, on request.

Kinds:
- "429": refuse with 429 and `Retry-After` (not applied);
- "503": refuse with 503 (not applied);
- "reset": drop the connection before applying;
- "applied_then_502": apply the request, then answer 502 (an ambiguous write);
- "applied_then_reset": apply the request, then drop the connection.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse, ResetConnection

BEFORE = {"429", "503", "reset"}
AFTER = {"applied_then_502", "applied_then_reset"}


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    kind: str
    remaining: int
    retry_after: float | None

    def matches(self, request: FakeRequest) -> bool:
        return (
            self.remaining > 0
            and request.method == self.method
            and bool(self.path.fullmatch(request.path))
        )


class FaultInjector:
    def __init__(self, app: FakeApp) -> None:
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.fired: list[tuple[str, str, str]] = []  # (kind, method, path) of each fault used
        app.before.append(self._before)
        app.after.append(self._after)

    def fail_next(
        self,
        method: str,
        path: str,
        kind: str,
        *,
        count: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `count` requests `method path` (path: a regex) fail with `kind`."""
        if kind not in BEFORE | AFTER:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path), kind, count, retry_after))

    def _take(self, request: FakeRequest, kinds: set[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(request):
                    fault.remaining -= 1
                    self.fired.append((fault.kind, request.method, request.path))
                    return fault
        return None

    def _before(self, request: FakeRequest) -> FakeResponse | None:
        fault = self._take(request, BEFORE)
        if fault is None:
            return None
        if fault.kind == "reset":
            raise ResetConnection()
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        if fault.kind == "429":
            headers.update({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})
            return FakeResponse(429, {"errorMessages": ["Rate limit exceeded."]}, headers)
        return FakeResponse(503, {"errorMessages": ["Service unavailable."]}, headers)

    def _after(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if response.status >= 400:
            return response  # nothing was applied: keep the real refusal
        fault = self._take(request, AFTER)
        if fault is None:
            return response
        if fault.kind == "applied_then_reset":
            raise ResetConnection()
        return FakeResponse(
            502, b"<html><body>Bad Gateway</body></html>", {"content-type": "text/html"}
        )
