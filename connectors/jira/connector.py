"""The Jira Cloud connector: webhooks, fetch, poll, query (cron for-each), and actions.

Polling reads `/rest/api/3/search/jql` (the old `/search` answers 410 on Cloud) with
`(<restriction>) AND updated >= "<minute>" ORDER BY updated ASC`. JQL dates are minutes in
the API user's time zone (read once from /myself), so each window starts
`poll_overlap_minutes` before the cursor; the engine drops what it has already seen by version.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from connectors.jira import webhooks
from connectors.jira.actions import JiraActions
from connectors.jira.client import DEFAULT_429_WAIT, JiraApi, jira_limits
from connectors.jira.issues import ISSUE_FIELDS, SOURCE, issue_observation, jql_time
from connectors.jira.settings import JiraSettings
from syncd.sdk import (
    Clock,
    Connector,
    Governor,
    Hint,
    ObjectRef,
    Observation,
    ParamsModel,
    PermanentError,
    PollPage,
    WebhookRequest,
    account_id,
    governor_for,
)

OBJECT_TYPES = ("issue",)


class IssueQuery(ParamsModel):
    jql: str
    page_size: int | None = None


class JiraConnector(JiraActions, Connector):
    name = SOURCE
    required_secrets = ("api_token",)
    Settings = JiraSettings
    webhook_headers = (
        webhooks.SIGNATURE_HEADER,
        webhooks.IDENTIFIER_HEADER,
        webhooks.RETRY_HEADER,
    )
    settings: JiraSettings

    def __init__(self, settings: JiraSettings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock)
        token = settings.api_token.get_secret_value() if settings.api_token else ""
        account = account_id(settings.base_url, settings.email, token)
        self.governor = governor_for(
            "jira",
            account,
            self.clock,
            lambda: Governor(
                "jira",
                jira_limits(settings),
                clock=self.clock,
                margin=settings.rate_margin,
                default_retry_after=DEFAULT_429_WAIT,
                account=account,
            ),
        )
        self.api = JiraApi(settings, self.governor)
        self._lock = threading.Lock()
        self._fields: dict[str, dict[str, Any]] | None = None
        self._time_zone: str | None = None

    def close(self) -> None:
        self.api.close()

    def governors(self) -> list[Governor]:
        return [self.governor]

    # -- webhooks ----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        return webhooks.verify(request, self.settings.webhook_secret, self.settings.allow_unsigned)

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        return webhooks.hints(request, self.name)

    # -- reading -----------------------------------------------------------------------

    def fetch(self, ref: ObjectRef) -> Observation | None:
        self._check_type(ref.type)
        issue = self.api.get_json_or_none(
            f"issue/{ref.id}", {"fields": ",".join(ISSUE_FIELDS), "expand": "changelog"}
        )
        return None if issue is None else issue_observation(issue, self.settings.base_url)

    # Issues per `key in (...)` search: Jira pages searches that return fields at 100.
    fetch_batch_size = 50

    def fetch_many(self, refs: list[ObjectRef]) -> dict[ObjectRef, Observation]:
        """Issues by one search, `key in (...)`. Jira refuses the whole search (400) when a
        key does not exist: the inbox then fetches each alone. One not returned (moved to
        another key) is left out, for the inbox to fetch alone."""
        for ref in refs:
            self._check_type(ref.type)
        keys = ", ".join(json.dumps(ref.id) for ref in refs)
        page = self.api.get_json(
            "search/jql",
            {
                "jql": f"key in ({keys})",
                "maxResults": len(refs),
                "fields": ",".join(ISSUE_FIELDS),
                "expand": "changelog",
            },
        )
        found = [issue_observation(i, self.settings.base_url) for i in page.get("issues") or []]
        return {obs.ref: obs for obs in found}

    def poll_streams(self) -> list[str]:
        return list(OBJECT_TYPES)

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        """One page of issues updated since the cursor.

        Cursor: {"since": ms, "token": nextPageToken | null, "max": ms}. While a search is
        being paged, `since` stays put and `token` is Jira's; at its last page `since`
        becomes the newest `updated` seen, and the next poll starts a new search.
        """
        self._check_type(object_type)
        state = json.loads(cursor) if cursor else {"since": None, "token": None, "max": None}
        jql = self._poll_jql(state["since"])
        params: dict[str, Any] = {
            "jql": jql,
            "maxResults": self.settings.page_size,
            "fields": ",".join(ISSUE_FIELDS),
            "expand": "changelog",
        }
        if state.get("token"):
            params["nextPageToken"] = state["token"]
        page = self.api.get_json("search/jql", params)
        observations = [issue_observation(i, self.settings.base_url) for i in page["issues"]]
        newest = max([o.version for o in observations if o.version] + [state.get("max") or 0])
        token = page.get("nextPageToken")
        if token:
            next_state = {"since": state["since"], "token": token, "max": newest or None}
        else:
            next_state = {"since": newest or state["since"], "token": None, "max": None}
        return PollPage(observations, json.dumps(next_state), more=bool(token))

    def query(self, object_type: str, query: dict[str, Any]) -> Iterator[Observation]:
        """Issues matching `{"jql": ...}`, every page (for cron rules' for_each)."""
        self._check_type(object_type)
        try:
            spec = IssueQuery.model_validate(query)
        except ValidationError as exc:
            raise PermanentError(f"invalid Jira query: {exc.errors()[0]['msg']}") from None
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "jql": spec.jql,
                "maxResults": spec.page_size or self.settings.page_size,
                "fields": ",".join(ISSUE_FIELDS),
                "expand": "changelog",
            }
            if token:
                params["nextPageToken"] = token
            page = self.api.get_json("search/jql", params)
            for issue in page.get("issues") or []:
                yield issue_observation(issue, self.settings.base_url)
            token = page.get("nextPageToken")
            if not token:
                return

    # -- helpers -----------------------------------------------------------------------

    def _check_type(self, object_type: str) -> None:
        if object_type not in OBJECT_TYPES:
            raise PermanentError(f"jira has no object type {object_type!r} (only 'issue')")

    def _poll_jql(self, since_ms: int | None) -> str:
        start = 0
        if since_ms:
            overlap = timedelta(minutes=self.settings.poll_overlap_minutes)
            start = since_ms - int(overlap.total_seconds() * 1000)
        clause = f'updated >= "{jql_time(max(start, 0), self.time_zone())}"'
        restriction = self.settings.poll_restriction()
        where = f"({restriction}) AND {clause}" if restriction else clause
        return f"{where} ORDER BY updated ASC"

    def time_zone(self) -> str:
        """The API user's time zone: JQL date literals are read in it."""
        with self._lock:
            if self._time_zone is None:
                me = self.api.get_json("myself")
                self._time_zone = str(me.get("timeZone") or "UTC")
            return self._time_zone

    def field_ids(self) -> dict[str, dict[str, Any]]:
        """Fields by id, by name and by lower-case name (custom fields are set by name)."""
        with self._lock:
            if self._fields is None:
                found: dict[str, dict[str, Any]] = {}
                for field in self.api.get_json("field"):
                    found[field["id"]] = field
                    found.setdefault(field["name"], field)
                    found.setdefault(field["name"].casefold(), field)
                self._fields = found
            return self._fields
