"""The console's web app: server-rendered pages (Jinja2) with a little htmx, served by the
daemon on its own listener (`[console] listen`, loopback by default) behind a token.

Read-mostly: the pages read the store through `syncd.store.console`; the three buttons on an
action (retry, re-plan, cancel) are POSTs carrying a CSRF field and run the CLI's own
operations (`syncd.replan`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.clock import Clock, to_ms
from syncd.console import presenters
from syncd.console.auth import COOKIE, Keys
from syncd.ingest import RulesHolder
from syncd.logs import redact
from syncd.replan import cancel_action, retry_action
from syncd.store import console as queries
from syncd.store.actions import STATUSES as ACTION_STATUSES
from syncd.store.actions import action_by_id
from syncd.store.db import Store

log = structlog.get_logger("syncd.console")
HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
MAX_FORM_BYTES = 4096
# Plot series are reused this long: hourly buckets over days need not be fresher, and
# counting a week of rows for every viewer's refresh would compete with ingest.
PLOT_CACHE_SECONDS = 30.0


class Console:
    def __init__(
        self, store: Store, rules: RulesHolder, clock: Clock, sources: list[str], keys: Keys
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.sources = sources
        self.keys = keys
        self._plots: dict[int, tuple[float, queries.PlotData]] = {}
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
        )
        self.env.globals.update(p=presenters, csrf=keys.csrf, statuses=ACTION_STATUSES)
        # Stored text may quote what an API answered: configured secrets and token-shaped
        # strings are masked on every page, as in the log.
        self.env.filters["redact"] = lambda text: redact(str(text)) if text else text

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(now_ms=self.now_ms(), **context)
        return HTMLResponse(html, status)

    # -- pages ---------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        data = await asyncio.to_thread(queries.overview, self.store, self.now_ms(), self.sources)
        counted = {r.rule_id for r in data.rules}
        data.rules += [
            queries.RuleRow(rule_id, 0, 0, 0, 0)  # loaded, never planned yet
            for rule_id in sorted(self.rules.current.by_id)
            if rule_id not in counted
        ]
        return self.render(
            "overview.html", o=data, page="overview", rules_loaded=len(self.rules.current.rules)
        )

    async def activity(self, request: Request) -> Response:
        q = request.query_params
        filters = self._filters(q)
        before = int(q["before"]) if q.get("before", "").isdigit() else None
        page = await asyncio.to_thread(queries.activity, self.store, filters, before, PAGE_SIZE)
        keep = {k: v for k, v in q.items() if k != "before" and v}
        older = "?" + urlencode({**keep, "before": page.next_before}) if page.next_before else None
        template = "activity_rows.html" if request.headers.get("hx-request") else "activity.html"
        return self.render(
            template,
            page="activity",
            entries=page.entries,
            older=older,
            f=filters,
            q=q,
            sources=self.sources,
            rule_ids=sorted(self.rules.current.by_id),
            view="changes",
        )

    async def action_list(self, request: Request) -> Response:
        """Every action newest first, scheduled ones (no event) included."""
        q = request.query_params
        filters = self._filters(q)
        before = int(q["before"]) if q.get("before", "").isdigit() else None
        rows, next_before = await asyncio.to_thread(
            queries.action_page, self.store, filters, before, PAGE_SIZE
        )
        keep = {k: v for k, v in q.items() if k != "before" and v}
        older = "?" + urlencode({**keep, "before": next_before}) if next_before else None
        template = "actions_rows.html" if request.headers.get("hx-request") else "actions.html"
        return self.render(
            template,
            page="activity",
            rows=rows,
            older=older,
            f=filters,
            q=q,
            sources=self.sources,
            rule_ids=sorted(self.rules.current.by_id),
            view="actions",
        )

    def _filters(self, q: Any) -> queries.Filters:
        return queries.Filters(
            rule=q.get("rule", "").strip(),
            source=q.get("source", "").strip(),
            object=q.get("object", "").strip()[:200],
            status=q.get("status", "") if q.get("status", "") in ACTION_STATUSES else "",
            since_ms=_ms(q.get("since", "")),
            until_ms=_ms(q.get("until", "")),
        )

    async def event(self, request: Request) -> Response:
        found = await asyncio.to_thread(
            queries.event, self.store, int(request.path_params["event_id"])
        )
        if found is None:
            return self.render("missing.html", 404, what="event", page="activity")
        entry, trace = found
        return self.render("event.html", page="activity", e=entry, trace=trace)

    async def action(self, request: Request) -> Response:
        found = await asyncio.to_thread(
            queries.action, self.store, int(request.path_params["action_id"])
        )
        if found is None:
            return self.render("missing.html", 404, what="action", page="activity")
        row, replannable = found
        fields, context = (
            ({}, {})
            if not (row.source and row.object_type and row.object_id)
            else await asyncio.to_thread(
                queries.object_seen, self.store, row.source, row.object_type, row.object_id
            )
        )
        return self.render(
            "action.html",
            page="activity",
            a=row,
            replannable=replannable,
            said=request.query_params.get("said", ""),
            fields=fields,
            context=context,
        )

    async def operate(self, request: Request) -> Response:
        """POST /actions/<id>/{retry,replan,cancel}: the CLI's operations, then back to the
        action's page with what was done."""
        form = await _form(request)
        if not self.keys.csrf_ok(form.get("csrf", "")):
            return Response("missing or wrong CSRF field", 403)
        action_id = int(request.path_params["action_id"])
        verb = request.path_params["verb"]
        if verb not in ("retry", "replan", "cancel"):
            return Response("unknown operation", 404)
        said = await asyncio.to_thread(self._operate, action_id, verb)
        if said is None:
            return self.render("missing.html", 404, what="action", page="activity")
        log.info("console.action_operated", action_id=action_id, verb=verb, result=said)
        return RedirectResponse(f"/actions/{action_id}?" + urlencode({"said": said}), 303)

    def _operate(self, action_id: int, verb: str) -> str | None:
        now = self.now_ms()
        with self.store.tx() as conn:
            row = action_by_id(conn, action_id)
            if row is None:
                return None
            if verb == "cancel":
                return cancel_action(conn, row, now)
            # Retry and re-plan are one operation, as in `syncd actions retry`: an action
            # that kept its situation (a failed render) is planned again with today's rules.
            return retry_action(self.store, conn, row, self.rules.current, now)

    async def plots(self, request: Request) -> Response:
        return self.render("plots.html", page="plots")

    async def plot_data(self, request: Request) -> Response:
        hours = 168 if request.query_params.get("range") == "7d" else 24
        cached = self._plots.get(hours)
        if cached is None or time.monotonic() - cached[0] > PLOT_CACHE_SECONDS:
            fresh = await asyncio.to_thread(queries.plot_data, self.store, self.now_ms(), hours)
            cached = self._plots[hours] = (time.monotonic(), fresh)
        d = cached[1]
        return JSONResponse(
            {
                "hours": [h // 1000 for h in d.hours],
                "events": d.events,
                "actions": d.actions,
                "failures": d.failures,
                "failures_by_rule": d.failures_by_rule,
                "latency": {
                    "p50_ms": d.latency_p50_ms,
                    "p95_ms": d.latency_p95_ms,
                    "samples": d.latency_samples,
                    "p50": presenters.duration(d.latency_p50_ms),
                    "p95": presenters.duration(d.latency_p95_ms),
                },
            }
        )

    # -- login ---------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self.render("login.html", page="login", failed=False)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        if not self.keys.token_ok(form.get("token", "").strip()):
            log.warning("console.login_failed")
            return self.render("login.html", 401, page="login", failed=True)
        response = RedirectResponse("/", 303)
        response.set_cookie(COOKIE, self.keys.session, httponly=True, samesite="strict", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        if not self.keys.csrf_ok(form.get("csrf", "")):
            return Response("missing or wrong CSRF field", 403)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (no multipart: nothing here uploads files)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _ms(text: str) -> int | None:
    """A filter's time (`datetime-local` gives 2026-12-01T10:00; read as UTC unless it says)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return to_ms(moment)


class TokenGate:
    """401 for anything but the login page without the token (Bearer) or the session cookie."""

    OPEN = ("/login",)

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.OPEN or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        accepts_html = any(k == b"accept" and b"text/html" in v for k, v in scope["headers"])
        if accepts_html and scope["method"] == "GET":  # a person: the login page, still 401
            body = (
                b'<!doctype html><meta charset="utf-8"><title>syncd console</title>'
                b'<p>Log in first: <a href="/login">/login</a></p>'
            )
            kind = b"text/html; charset=utf-8"
        else:
            body, kind = b'{"error": "console token required"}', b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="syncd console"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        for name, raw in scope["headers"]:
            if name == b"authorization":
                text = raw.decode("latin-1")
                if text[:7].lower() == "bearer " and self.keys.token_ok(text[7:].strip()):
                    return True
            elif name == b"cookie":
                for part in raw.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    if key == COOKIE and self.keys.session_ok(val):
                        return True
        return False


class SecurityHeaders:
    """No framing, no sniffing, no referrer leaving the console; scripts only from itself."""

    HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (
            b"content-security-policy",
            b"default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def build_console_app(console: Console) -> ASGIApp:
    routes = [
        Route("/", console.overview),
        Route("/activity", console.activity),
        Route("/events/{event_id:int}", console.event),
        Route("/actions", console.action_list),
        Route("/actions/{action_id:int}", console.action),
        Route("/actions/{action_id:int}/{verb:str}", console.operate, methods=["POST"]),
        Route("/plots", console.plots),
        Route("/plots/data", console.plot_data),
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    return SecurityHeaders(TokenGate(app, console.keys))
