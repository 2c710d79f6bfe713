"""The GitHub connector: issues (fetch, poll, webhooks) and issue actions, through PyGithub."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.github import poll as polling
from connectors.github import webhooks
from connectors.github.cli import github_cli
from connectors.github.client import GovernedGithub, JsonRequest, github_limits
from connectors.github.params import (
    AddLabelsParams,
    CloseIssueParams,
    CommentParams,
    CreateIssueParams,
)
from connectors.github.settings import GitHubSettings
from connectors.github.text import has_marker, marker_value, neutralise_mentions, with_marker
from syncd.sdk import (
    ActionContext,
    ActionResult,
    Clock,
    Connector,
    Governor,
    Hint,
    ObjectRef,
    Observation,
    PermanentError,
    PollPage,
    WebhookRequest,
    account_id,
    action,
    governor_for,
    to_ms,
)

ISSUE = "issue"
# Creates one executor worker keeps in flight at once (first attempts that need no look-up;
# max_in_flight bounds the workers on GitHub). 4: issue 17's benchmark, docs/BENCHMARKS.md.
CREATES_IN_FLIGHT = 4
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


def parse_time(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00"))


def split_issue_id(issue_id: str) -> tuple[str, int]:
    repo, _, number = issue_id.rpartition("#")
    if not repo or not number.isdigit():
        raise PermanentError(f"not an issue id 'owner/repo#N': {issue_id!r}")
    return repo, int(number)


class GitHubConnector(Connector):
    name = "github"
    required_secrets = ("token",)
    Settings = GitHubSettings
    webhook_headers = webhooks.KEPT_HEADERS
    cli = github_cli
    settings: GitHubSettings

    def __init__(self, settings: GitHubSettings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock)
        token = settings.token.get_secret_value() if settings.token else ""
        base_url = (settings.base_url or "https://api.github.com").rstrip("/")
        self.governor = governor_for(
            "github",
            account_id(base_url, token),
            self.clock,
            lambda: Governor(
                "github",
                github_limits(
                    settings.requests_per_hour,
                    settings.write_limit,
                    settings.write_period_seconds,
                    settings.writes_per_hour,
                ),
                clock=self.clock,
                margin=settings.rate_margin,
                default_retry_after=60.0,
                account=account_id(base_url, token),
            ),
        )
        self.client = GovernedGithub(
            token=token,
            base_url=base_url,
            timeout=settings.timeout_seconds,
            clock=self.clock,
            governor=self.governor,
        )
        self._login: str | None = None

    def close(self) -> None:
        self.client.close()

    def governors(self) -> list[Governor]:
        return [self.governor]

    # -- helpers -------------------------------------------------------------------------

    def login(self) -> str:
        """The authenticated user's login (the `creator` of what syncd opens)."""
        if self._login is None:
            _, data = self.client.request("GET", "/user")
            self._login = str(data["login"])
        return self._login

    def _pages(self, path: str, params: dict[str, Any]) -> Any:
        """Every item of a list endpoint, following `Link: rel="next"`."""
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **params}
        while url:
            headers, data = self.client.request("GET", url, params=query)
            yield from data or []
            found = _NEXT_LINK.search(headers.get("link", ""))
            url, query = (found[1], None) if found else (None, None)

    def observation(self, repo: str, data: dict[str, Any]) -> Observation:
        updated = parse_time(data["updated_at"])
        return Observation(
            ref=webhooks.issue_ref(self.name, repo, int(data["number"])),
            fields={
                "number": data["number"],
                "repo": repo,
                "title": data["title"],
                "state": data["state"],
                "state_reason": data.get("state_reason"),
                "labels": sorted(lab["name"] for lab in data.get("labels") or []),
                "assignees": sorted(a["login"] for a in data.get("assignees") or []),
                "closed_by": (data.get("closed_by") or {}).get("login"),
                "body": data.get("body"),
                "html_url": data["html_url"],
                "user": (data.get("user") or {}).get("login"),
                "closed_at": data.get("closed_at"),
                "created_at": data["created_at"],
                "updated_at": data["updated_at"],
            },
            version=to_ms(updated) if updated else None,
            created=_ms(data.get("created_at")),
        )

    def _text(self, text: str, allow_mentions: bool) -> str:
        return text if allow_mentions else neutralise_mentions(text)

    def _check_labels(self, repo: str, labels: list[str]) -> None:
        if self.settings.create_missing_labels or not labels:
            return
        known = {lab["name"].lower() for lab in self._pages(f"/repos/{repo}/labels", {})}
        missing = [lab for lab in labels if lab.lower() not in known]
        if missing:
            raise PermanentError(
                f"unknown label(s) in {repo}: {', '.join(missing)} "
                "(create them, or set create_missing_labels = true)"
            )

    def _milestone(self, repo: str, wanted: str | int) -> int:
        """A milestone's number, for its title or number (GitHub's API takes only numbers)."""
        for item in self._pages(f"/repos/{repo}/milestones", {"state": "all"}):
            if str(item["number"]) == str(wanted) or item["title"] == str(wanted):
                return int(item["number"])
        raise PermanentError(f"no milestone {wanted!r} in {repo}")

    # -- webhooks ------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        secret = self.settings.webhook_secret
        return webhooks.verify(
            request, secret.get_secret_value() if secret else None, self.settings.allow_unsigned
        )

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        return webhooks.parse(request, self.name)

    # -- reading -------------------------------------------------------------------------

    def fetch(self, ref: ObjectRef) -> Observation | None:
        repo, number = split_issue_id(ref.id)
        path = f"/repos/{repo}/issues/{number}"
        try:
            _, data = self.client.request("GET", path)
        except PermanentError as exc:
            if str(exc).startswith(("HTTP 404", "HTTP 410")):
                return None
            raise
        return self.observation(repo, data)

    def poll_streams(self) -> list[str]:
        return [ISSUE]

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        if object_type != ISSUE:
            raise PermanentError(f"github polls only {ISSUE!r}, not {object_type!r}")
        cursors = polling.load_cursor(cursor)
        observations: list[Observation] = []
        more = False
        for repo in self.settings.repositories:
            old = cursors.get(repo, polling.RepoCursor())
            headers = {"If-None-Match": old.etag} if old.etag else None
            answer, items = self.client.request(
                "GET", f"/repos/{repo}/issues", params=old.params(), headers=headers
            )
            if items is None:  # 304 Not Modified: nothing changed, and it was free
                continue
            new, issues = polling.advance(old, items, answer.get("etag"))
            cursors[repo] = new
            observations.extend(self.observation(repo, i) for i in issues)
            # A full page means more may follow; unless `since` is stuck on one second.
            more = more or (len(items) >= polling.PAGE_SIZE and new.since != old.since)
        return PollPage(observations, polling.dump_cursor(cursors), more=more)

    # -- actions -------------------------------------------------------------------------

    @action("create_issue", CreateIssueParams)
    def create_issue(self, params: CreateIssueParams, ctx: ActionContext) -> ActionResult:
        """Open an issue, marked with the action's key so a retry finds it."""
        issue = self._issue_body(params, ctx)
        _, data = self.client.request("POST", f"/repos/{params.repo}/issues", body=issue)
        return ActionResult(external_id=f"{params.repo}#{data['number']}", url=data["html_url"])

    @create_issue.together(window=CREATES_IN_FLIGHT)
    def create_issues(
        self, params: list[CreateIssueParams], ctxs: list[ActionContext], window: int
    ) -> list[ActionResult | Exception]:
        """`create_issue` for several issues, up to `window` POSTs in flight at once."""
        results: list[ActionResult | Exception] = []
        posts: list[tuple[int, str]] = []  # (index in results, repo) of each POST to send
        bodies: list[JsonRequest] = []
        for one, ctx in zip(params, ctxs, strict=True):
            try:
                body = self._issue_body(one, ctx)
            except Exception as exc:  # a label or milestone look-up failed: this one only
                results.append(exc)
                continue
            posts.append((len(results), one.repo))
            bodies.append(JsonRequest("POST", f"/repos/{one.repo}/issues", body=body))
            results.append(PermanentError("not sent"))  # replaced below
        answers = self.client.request_together(bodies, window)
        for (at, repo), answer in zip(posts, answers, strict=True):
            try:
                if isinstance(answer, Exception):
                    raise answer
                data = answer[1]
                results[at] = ActionResult(f"{repo}#{data['number']}", data["html_url"])
            except Exception as exc:
                results[at] = exc
        return results

    def _issue_body(self, params: CreateIssueParams, ctx: ActionContext) -> dict[str, Any]:
        """The body PyGithub's `Repository.create_issue` sends (its Requester's auth, URL and
        errors, without building the Issue object: the result needs two fields)."""
        self._check_labels(params.repo, params.labels)
        issue: dict[str, Any] = {
            "title": self._text(params.title, params.allow_mentions),
            "body": with_marker(self._text(params.body, params.allow_mentions), ctx.key),
        }
        if params.assignees:
            issue["assignees"] = list(params.assignees)
        if params.milestone:
            issue["milestone"] = self._milestone(params.repo, params.milestone)
        if params.labels:
            issue["labels"] = list(params.labels)
        return issue

    @create_issue.finder
    def find_issue(self, params: CreateIssueParams, ctx: ActionContext) -> ActionResult | None:
        # Listing is consistent at once; the search index lags, so it is only the fallback
        # for issues older than the window.
        since = self.clock.now() - timedelta(hours=self.settings.finder_window_hours)
        listing = self._pages(
            f"/repos/{params.repo}/issues",
            {
                "creator": self.login(),
                "state": "all",
                "since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        for item in listing:
            if has_marker(item.get("body"), ctx.key) and not item.get("pull_request"):
                return ActionResult(f"{params.repo}#{item['number']}", item["html_url"])
        query = (
            f'"syncd:key={marker_value(ctx.key)}" repo:{params.repo} '
            f"author:{self.login()} in:body is:issue"
        )
        _, found = self.client.request("GET", "/search/issues", params={"q": query})
        for item in (found or {}).get("items", []):
            if has_marker(item.get("body"), ctx.key):
                return ActionResult(f"{params.repo}#{item['number']}", item["html_url"])
        return None

    @action("comment", CommentParams)
    def comment(self, params: CommentParams, ctx: ActionContext) -> ActionResult:
        """Comment on an issue, marked with the action's key."""
        path = f"/repos/{params.repo}/issues/{params.issue_number}/comments"
        body = with_marker(self._text(params.body, params.allow_mentions), ctx.key)
        _, data = self.client.request("POST", path, body={"body": body})
        return ActionResult(
            f"{params.repo}#{params.issue_number}/comment/{data['id']}", data["html_url"]
        )

    @comment.finder
    def find_comment(self, params: CommentParams, ctx: ActionContext) -> ActionResult | None:
        path = f"/repos/{params.repo}/issues/{params.issue_number}/comments"
        login = self.login()
        for item in self._pages(path, {}):
            if (item.get("user") or {}).get("login") == login and has_marker(
                item.get("body"), ctx.key
            ):
                return ActionResult(
                    f"{params.repo}#{params.issue_number}/comment/{item['id']}", item["html_url"]
                )
        return None

    @action("add_labels", AddLabelsParams, idempotent=True)
    def add_labels(self, params: AddLabelsParams, ctx: ActionContext) -> ActionResult:
        """Add labels to an issue (adding a label it has already is a no-op)."""
        self._check_labels(params.repo, params.labels)
        path = f"/repos/{params.repo}/issues/{params.issue_number}/labels"
        # PyGithub's add_to_labels sends a bare array; the documented body is an object.
        self.client.request("POST", path, body={"labels": list(params.labels)})
        return ActionResult(external_id=f"{params.repo}#{params.issue_number}")

    @action("close_issue", CloseIssueParams, idempotent=True)
    def close_issue(self, params: CloseIssueParams, ctx: ActionContext) -> ActionResult:
        """Close an issue unless it is closed already."""
        path = f"/repos/{params.repo}/issues/{params.issue_number}"
        _, data = self.client.request("GET", path)
        if data["state"] != "closed":
            body: dict[str, Any] = {"state": "closed"}
            if params.state_reason:
                body["state_reason"] = params.state_reason
            self.client.request("PATCH", path, body=body)
        return ActionResult(f"{params.repo}#{params.issue_number}", data["html_url"])

    # -- operations ----------------------------------------------------------------------

    def redeliver_failed(self, since: timedelta) -> list[int]:
        """Ask GitHub to redeliver failed webhook deliveries newer than `since` ago, for the
        configured repositories; returns the ids of the deliveries redelivered."""
        cutoff = self.clock.now() - since
        redelivered: list[int] = []
        for repo in self.settings.repositories:
            for hook in self._pages(f"/repos/{repo}/hooks", {}):
                base = f"/repos/{repo}/hooks/{hook['id']}/deliveries"
                recent = []
                for item in self._pages(base, {}):  # newest first
                    when = parse_time(item["delivered_at"])
                    if when is None or when < cutoff:
                        break
                    recent.append(item)
                delivered = {d["guid"] for d in recent if 200 <= d["status_code"] < 300}
                retried: set[str] = set()
                for item in recent:
                    if item["guid"] in delivered or item["guid"] in retried:
                        continue
                    retried.add(item["guid"])
                    self.client.request("POST", f"{base}/{item['id']}/attempts")
                    redelivered.append(int(item["id"]))
        return redelivered


def _ms(text: str | None) -> int | None:
    moment = parse_time(text) if text else None
    return to_ms(moment) if moment else None
