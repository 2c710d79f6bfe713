"""A local fake of GitHub's REST API (issues, comments, labels, search, webhooks, deliveries).

Used by the tests and by the `syncd demo` sandbox. It answers in the shapes of GitHub's
OpenAPI description, validates every request body against it (422 like GitHub, and the
failure is recorded in `validation_failures`), enforces the secondary rate limit on an
injectable clock, and can misbehave on purpose: apply a write and then answer 502 or reset
the connection.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.github.webhooks import signed_delivery
from syncd.clock import Clock, SystemClock
from syncd_sandbox.fakeserver import (
    FakeApp,
    FakeRequest,
    FakeResponse,
    FakeServer,
    ResetConnection,
    _Handler,
)
from syncd_sandbox.github import openapi
from syncd_sandbox.github.fake_data import (
    DOCS,
    FakeDelivery,
    FakeHook,
    FakeIssue,
    FakeLabel,
    FakeMilestone,
    FakeRepo,
    Shapes,
)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
NUMERIC_PARAMS = frozenset({"issue_number", "comment_id", "hook_id", "delivery_id"})
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
# (url, headers, body) -> HTTP status of the receiver (0: no answer)
Handler = Callable[[FakeRequest], FakeResponse]
Transport = Callable[[str, dict[str, str], bytes], int]


def http_transport(url: str, headers: dict[str, str], body: bytes) -> int:
    """Deliver a webhook over HTTP, as GitHub's hookshot does (10 s to answer)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class _NoDelayHandler(_Handler):
    disable_nagle_algorithm = True


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class FakeGitHub:
    """In-memory GitHub. `start()` serves it on 127.0.0.1; `base_url` is what clients use."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        login: str = "syncd-bot",
        token: str | None = None,
        write_limit: int = 80,
        write_period: float = 60.0,
        primary_limit: int = 5000,
        search_lag_seconds: float = 0.0,
        validate: bool = True,
        transport: Transport = http_transport,
    ) -> None:
        self.clock = clock or SystemClock()
        self.login = login
        self.token = token
        self.write_limit = write_limit
        self.write_period = write_period
        self.primary_limit = primary_limit
        self.search_lag_seconds = search_lag_seconds
        self.transport = transport
        self.rest = openapi.load("rest") if validate else None
        self.hooks_spec = openapi.load("hooks") if validate else None
        self.repos: dict[str, FakeRepo] = {}
        self.user_ids: dict[str, int] = {}
        self.validation_failures: list[str] = []
        self.secondary_limited = 0  # 403 answers given for the secondary limit
        self.writes_per_hour = 500  # the secondary limit's hourly part (content-creating)
        self.early_requests = 0  # requests received before a given Retry-After had passed
        self._retry_until = 0.0
        self._hour_writes: deque[float] = deque()
        self.primary_limited = 0
        self.rate_limit_used = 0  # requests that cost primary rate limit (a 304 costs none)
        self.not_modified = 0
        self.ambiguous_answers = 0  # writes applied and then answered 502 / reset
        self._writes: deque[float] = deque()
        self._primary_reset = 0.0
        self._fault_probability = 0.0
        self._fault_kinds: tuple[str, ...] = ()
        self._fault_rng = random.Random(0)
        self._next_id = 1000
        self._lock = threading.RLock()
        self._outbox = threading.local()
        self.base_url = "http://127.0.0.1"
        self.server: FakeServer | None = None
        self.app = FakeApp()
        self.app.before.extend(
            [self._count_early, self._check_auth, self._secondary_limit, self._primary_limit]
        )
        self.app.after.extend([self._inject_fault, self._count_and_stamp])
        self._register_routes()
        self.add_user(login)

    # -- life cycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeGitHub:
        server = FakeServer(self.app, port=port)
        # Headers and body leave in two writes; with Nagle on, each answer waits ~40 ms for
        # the client's delayed ACK. (To move into connectors/fakeserver.py's handler.)
        server._server.RequestHandlerClass = _NoDelayHandler
        self.server = server.start()
        self.base_url = self.server.url
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> FakeGitHub:
        return self.start() if self.server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a test (or the demo) sets up and does as a person would ------------------------

    def new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def add_user(self, login: str) -> None:
        with self._lock:
            self.user_ids.setdefault(login, self.new_id())

    def add_repo(self, full_name: str) -> FakeRepo:
        owner, name = full_name.split("/", 1)
        with self._lock:
            self.add_user(owner)
            repo = self.repos.get(full_name)
            if repo is None:
                repo = FakeRepo(self.new_id(), owner, name, self.now())
                self.repos[full_name] = repo
            return repo

    def add_label(self, full_name: str, name: str, color: str = "ededed") -> FakeLabel:
        repo = self.repos[full_name]
        with self._lock:
            label = repo.label(name) or FakeLabel(self.new_id(), name, color)
            repo.labels[label.name] = label
            return label

    def add_milestone(self, full_name: str, title: str) -> FakeMilestone:
        repo = self.repos[full_name]
        with self._lock:
            number = len(repo.milestones) + 1
            ms = FakeMilestone(self.new_id(), number, title, created_at=self.now())
            repo.milestones[number] = ms
            return ms

    def add_hook(
        self, full_name: str, url: str, secret: str | None, events: list[str] | None = None
    ) -> FakeHook:
        repo = self.repos[full_name]
        with self._lock:
            hook = FakeHook(
                self.new_id(), url, secret, events or ["issues", "issue_comment"], self.now()
            )
            repo.hooks[hook.id] = hook
            return hook

    def open_issue(
        self,
        full_name: str,
        title: str,
        *,
        user: str | None = None,
        body: str | None = None,
        labels: list[str] | None = None,
        pull_request: bool = False,
    ) -> FakeIssue:
        """Open an issue (or a pull request) as a person would, in the web UI."""
        repo = self.repos[full_name]
        user = user or repo.owner
        self.add_user(user)
        with self._lock:
            now = self.now()
            issue = FakeIssue(
                self.new_id(),
                self._next_number(repo),
                title,
                body,
                user,
                now,
                now,
                is_pull_request=pull_request,
            )
            for name in labels or []:
                issue.labels.append(self.add_label(full_name, name).name)
            repo.issues[issue.number] = issue
        self._emit(repo, "issues", "opened", issue)
        return issue

    def close_issue(
        self, full_name: str, number: int, *, user: str | None = None, reason: str = "completed"
    ) -> FakeIssue:
        """Close an issue as a person would (sets closed_by, closed_at, state_reason)."""
        repo = self.repos[full_name]
        user = user or repo.owner
        self.add_user(user)
        with self._lock:
            issue = repo.issues[number]
            self._set_state(issue, "closed", reason, user)
        self._emit(repo, "issues", "closed", issue)
        return issue

    def touch_issue(self, full_name: str, number: int, **changes: Any) -> FakeIssue:
        """Edit an issue's fields as a person would (bumps updated_at)."""
        repo = self.repos[full_name]
        with self._lock:
            issue = repo.issues[number]
            for key, value in changes.items():
                setattr(issue, key, value)
            issue.updated_at = self.now()
        self._emit(repo, "issues", "edited", issue)
        return issue

    def delete_issue(self, full_name: str, number: int) -> None:
        with self._lock:
            del self.repos[full_name].issues[number]

    def issues(self, full_name: str) -> list[FakeIssue]:
        with self._lock:
            return [i for i in self.repos[full_name].issues.values() if not i.is_pull_request]

    def inject_ambiguous_writes(
        self, probability: float, *, seed: int = 0, kinds: tuple[str, ...] = ("502", "reset")
    ) -> None:
        """Content-creating requests are applied, then answered 502 or reset (`kinds`) with
        `probability`, drawn from a seeded RNG so a test is repeatable."""
        with self._lock:
            self._fault_probability = probability
            self._fault_kinds = kinds
            self._fault_rng = random.Random(seed)

    def signed_webhook(
        self, event: str, payload: Any, secret: str, delivery_id: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of a signed delivery, ready to POST to syncd's webhook endpoint."""
        return signed_delivery(event, payload, secret, delivery_id)

    def issue_payload(self, full_name: str, number: int, action: str) -> dict[str, Any]:
        """The `issues` webhook payload GitHub would send for this issue now."""
        repo = self.repos[full_name]
        shapes = self._shapes()
        return {
            "action": action,
            "issue": shapes.issue(repo, repo.issues[number]),
            "repository": shapes.repository(repo),
            "sender": shapes.user(repo.owner),
        }

    # -- internals: state changes ----------------------------------------------------------

    @staticmethod
    def _next_number(repo: FakeRepo) -> int:
        return max(repo.issues, default=0) + 1

    def _set_state(self, issue: FakeIssue, state: str, reason: str | None, user: str) -> None:
        now = self.now()
        if state == "closed" and issue.state != "closed":
            issue.closed_at, issue.closed_by = now, user
            issue.state_reason = reason or "completed"
        elif state == "open" and issue.state != "open":
            issue.closed_at, issue.closed_by = None, None
            issue.state_reason = "reopened"
        issue.state = state
        issue.updated_at = now

    def _shapes(self, request: FakeRequest | None = None) -> Shapes:
        base = self.base_url
        if request is not None and request.headers.get("host"):
            base = f"http://{request.headers['host']}"
        return Shapes(base, self.user_ids)

    def _emit(self, repo: FakeRepo, event: str, action: str, issue: FakeIssue) -> None:
        hooks = [h for h in repo.hooks.values() if h.active and event in h.events]
        if not hooks:
            return
        payload = self.issue_payload(repo.full_name, issue.number, action)
        for hook in hooks:
            args = (repo, hook, event, action, json.dumps(payload).encode(), None)
            pending = getattr(self._outbox, "items", None)
            if pending is not None:
                pending.append(args)
            else:
                self._deliver(*args)

    def _deliver(
        self,
        repo: FakeRepo,
        hook: FakeHook,
        event: str,
        action: str | None,
        body: bytes,
        guid: str | None,
    ) -> FakeDelivery:
        payload = json.loads(body)
        headers, body = signed_delivery(event, payload, hook.secret or "", guid)
        if not hook.secret:
            headers.pop("X-Hub-Signature-256")
        headers["X-GitHub-Hook-ID"] = str(hook.id)
        status = self.transport(hook.url, headers, body)
        delivery = FakeDelivery(
            self.new_id(),
            headers["X-GitHub-Delivery"],
            self.now(),
            event,
            action,
            status,
            headers,
            body,
            redelivery=guid is not None,
        )
        with self._lock:
            hook.deliveries.append(delivery)
        return delivery

    def record_delivery(
        self,
        full_name: str,
        hook_id: int,
        event: str,
        payload: Any,
        status_code: int,
        *,
        age: timedelta = timedelta(0),
    ) -> FakeDelivery:
        """Record a past delivery attempt (e.g. one that failed while syncd was down)."""
        repo = self.repos[full_name]
        hook = repo.hooks[hook_id]
        headers, body = signed_delivery(event, payload, hook.secret or "")
        delivery = FakeDelivery(
            self.new_id(),
            headers["X-GitHub-Delivery"],
            self.now() - age,
            event,
            payload.get("action"),
            status_code,
            headers,
            body,
        )
        with self._lock:
            hook.deliveries.append(delivery)
        return delivery

    # -- internals: hooks around every request ---------------------------------------------

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> FakeResponse:
        return FakeResponse(status, {"message": message, "documentation_url": DOCS}, headers or {})

    def _check_auth(self, request: FakeRequest) -> FakeResponse | None:
        if self.token is None:
            return None
        given = request.headers.get("authorization", "")
        if given not in (f"token {self.token}", f"Bearer {self.token}"):
            return self._error(401, "Bad credentials")
        return None

    def _count_early(self, request: FakeRequest) -> FakeResponse | None:
        """A client must send nothing until a Retry-After (or the primary reset) it was given
        has passed: count the requests that arrive earlier."""
        with self._lock:
            if self.clock.now().timestamp() < self._retry_until:
                self.early_requests += 1
        return None

    def _secondary_limit(self, request: FakeRequest) -> FakeResponse | None:
        """80 content-creating requests a minute and 500 an hour (GitHub's documented
        secondary limits); over them, 403 with Retry-After."""
        if request.method not in WRITE_METHODS:
            return None
        now = self.clock.now().timestamp()
        with self._lock:
            for window, period in ((self._writes, self.write_period), (self._hour_writes, 3600)):
                while window and window[0] <= now - period:
                    window.popleft()
            wait = 0.0
            if len(self._writes) >= self.write_limit:
                wait = self._writes[0] + self.write_period - now
            if len(self._hour_writes) >= self.writes_per_hour:
                wait = max(wait, self._hour_writes[0] + 3600 - now)
            if wait > 0:
                self.secondary_limited += 1
                seconds = max(1, int(wait + 0.999))
                self._retry_until = max(self._retry_until, now + seconds)
                return self._error(403, SECONDARY_LIMIT_MESSAGE, {"retry-after": str(seconds)})
            self._writes.append(now)
            self._hour_writes.append(now)
        return None

    def _primary_limit(self, request: FakeRequest) -> FakeResponse | None:
        now = self.clock.now().timestamp()
        with self._lock:
            if now >= self._primary_reset:
                self._primary_reset = now + 3600
                self.rate_limit_used = 0
            if self.rate_limit_used >= self.primary_limit:
                self.primary_limited += 1
                self._retry_until = max(self._retry_until, self._primary_reset)
                return self._error(403, "API rate limit exceeded for user.")
        return None

    def _inject_fault(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if request.method != "POST" or not 200 <= response.status < 300:
            return response
        with self._lock:
            if not self._fault_kinds or self._fault_rng.random() >= self._fault_probability:
                return response
            kind = self._fault_rng.choice(self._fault_kinds)
            self.ambiguous_answers += 1
        if kind == "reset":
            raise ResetConnection()
        return self._error(502, "Server Error")

    def _count_and_stamp(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        with self._lock:
            if response.status == 304:
                self.not_modified += 1
            elif response.status != 403 or self.rate_limit_used < self.primary_limit:
                self.rate_limit_used += 1
            remaining = max(0, self.primary_limit - self.rate_limit_used)
            response.headers.update(
                {
                    "x-ratelimit-limit": str(self.primary_limit),
                    "x-ratelimit-remaining": str(remaining),
                    "x-ratelimit-used": str(self.rate_limit_used),
                    "x-ratelimit-reset": str(int(self._primary_reset)),
                    "x-ratelimit-resource": "core",
                }
            )
        return response

    # -- internals: routing and validation -------------------------------------------------

    def _route(
        self, method: str, template: str, spec: str | None = "rest"
    ) -> Callable[[Handler], Handler]:
        def group(match: re.Match[str]) -> str:
            name = match[1]
            return f"(?P<{name}>\\d+)" if name in NUMERIC_PARAMS else f"(?P<{name}>[^/]+)"

        pattern = re.sub(r"\{(\w+)\}", group, template)

        def wrap(fn: Handler) -> Handler:
            def handler(request: FakeRequest) -> FakeResponse:
                problem = self._validate(method, template, spec, request)
                if problem is not None:
                    return problem
                # Webhooks caused by this request go out after the lock is released: the
                # receiver may call back into the fake.
                self._outbox.items = []
                try:
                    with self._lock:
                        response = fn(request)
                    for args in self._outbox.items:
                        self._deliver(*args)
                finally:
                    self._outbox.items = None
                return response

            self.app.route(method, pattern)(handler)
            return fn

        return wrap

    def _validate(
        self, method: str, template: str, spec: str | None, request: FakeRequest
    ) -> FakeResponse | None:
        subset = {"rest": self.rest, "hooks": self.hooks_spec}.get(spec or "")
        if method not in WRITE_METHODS or subset is None:
            return None
        validator = subset.request_validator(method, template)
        if validator is None:
            return None
        if not request.body:
            if not subset.request_body_required(method, template):
                return None
            return self._invalid(method, template, "request body is required", 400)
        try:
            body = request.json()
        except ValueError:
            return self._invalid(method, template, "Problems parsing JSON", 400)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
            return self._invalid(method, template, detail, 422)
        return None

    def _invalid(self, method: str, template: str, detail: str, status: int) -> FakeResponse:
        with self._lock:
            self.validation_failures.append(f"{method} {template}: {detail}")
        return self._error(status, f"Invalid request.\n\n{detail}")

    def _repo(self, request: FakeRequest) -> FakeRepo | None:
        return self.repos.get(f"{request.params['owner']}/{request.params['repo']}")

    def _issue(self, request: FakeRequest) -> tuple[FakeRepo, FakeIssue] | None:
        repo = self._repo(request)
        if repo is None:
            return None
        issue = repo.issues.get(int(request.params["issue_number"]))
        return None if issue is None else (repo, issue)

    def _list(self, request: FakeRequest, items: list[Any]) -> FakeResponse:
        """One page of `items` with a Link header and an ETag (304 when it matches)."""
        per_page = min(100, int(request.arg("per_page", "30") or 30))
        page = max(1, int(request.arg("page", "1") or 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            query = {k: v[0] for k, v in request.query.items()}
            query["page"] = str(page + 1)
            next_url = f"{self._shapes(request).base}{request.path}?{urlencode(query)}"
            headers["link"] = f'<{next_url}>; rel="next"'
        digest = hashlib.sha1(
            json.dumps([request.path, sorted(request.query.items()), chunk]).encode()
        ).hexdigest()
        headers["etag"] = f'W/"{digest}"'
        if request.headers.get("if-none-match") == headers["etag"]:
            return FakeResponse(304, b"", headers)
        return FakeResponse(200, chunk, headers)

    def _labels_for(self, repo: FakeRepo, names: list[Any]) -> list[str]:
        """Label names from a request; unknown ones are created (GitHub does, with push)."""
        out = []
        for item in names:
            name = item["name"] if isinstance(item, dict) else str(item)
            out.append(self.add_label(repo.full_name, name).name)
        return out

    def _register_routes(self) -> None:
        from syncd_sandbox.github.fake_routes import register

        register(self)


def make_fake_github(**kwargs: Any) -> FakeGitHub:
    """A started fake GitHub (callers stop it). Accepts FakeGitHub's keyword arguments plus
    `repos` (full names to create) and `port`."""
    repos = kwargs.pop("repos", ["acme/infrastructure"])
    port = kwargs.pop("port", 0)
    fake = FakeGitHub(**kwargs)
    for name in repos:
        fake.add_repo(name)
    return fake.start(port)
