"""Jira actions: create_issue, comment, transition.

Jira has no idempotency key, so each effect carries a marker derived from the action's key:
an issue gets the label `syncd-<hash>` (found again with JQL `labels = "syncd-<hash>"`), a
comment gets the entity property `syncd` = {"marker": ...} (found by listing comments).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any

from pydantic import field_validator

from connectors.jira.adf import markdown_to_adf
from connectors.jira.client import JiraApi
from connectors.jira.settings import JiraSettings
from syncd.sdk import (
    JIRA_SUMMARY_MAX,
    ActionContext,
    ActionResult,
    ParamsModel,
    PermanentError,
    action,
    cap,
)

COMMENT_PROPERTY = "syncd"
TEXTAREA = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"


class CreateIssueParams(ParamsModel):
    project: str
    issue_type: str = "Task"
    summary: str
    description: str | None = None  # markdown or plain text; sent as ADF
    labels: list[str] = []
    assignee: str | None = None  # an accountId, or an e-mail address resolved to one
    parent: str | None = None  # e.g. the epic's key
    original_estimate: str | None = None  # "3h", "1d 4h"
    due_date: date | None = None
    fields: dict[str, Any] = {}  # custom fields by name ("Account") or id

    @field_validator(
        "description", "assignee", "parent", "original_estimate", "due_date", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # a template that renders to "" (no owner, no end date) means "not set"
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("summary")
    @classmethod
    def _fits(cls, value: str) -> str:
        return cap(value, JIRA_SUMMARY_MAX)

    @field_validator("original_estimate")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\s*(\d+\s*[wdhm]\s*)+", value):
            raise ValueError("a Jira duration such as '3h' or '1d 4h'")
        return value

    @field_validator("labels")
    @classmethod
    def _no_spaces(cls, value: list[str]) -> list[str]:
        if any(not label or " " in label for label in value):
            raise ValueError("Jira labels cannot be empty or contain spaces")
        return value


class CommentParams(ParamsModel):
    issue: str
    body: str  # markdown or plain text


class TransitionParams(ParamsModel):
    issue: str
    to: str  # a status name ("Done") or a transition name ("Start Progress")


def marker_for(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:16]


class JiraActions:
    """Mixed into JiraConnector; needs `api`, `settings` and `field_ids()`."""

    api: JiraApi
    settings: JiraSettings

    def field_ids(self) -> dict[str, dict[str, Any]]:  # pragma: no cover - connector's
        raise NotImplementedError

    def browse_url(self, key: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/browse/{key}"

    # -- create_issue ------------------------------------------------------------------

    @action("create_issue", CreateIssueParams)
    def create_issue(self, params: CreateIssueParams, ctx: ActionContext) -> ActionResult:
        """Create an issue carrying the marker label of the action's key."""
        marker = marker_for(self.settings.marker_label_prefix, ctx.key)
        fields = self._issue_fields(params, marker)
        created = self.api.call(lambda c: c.create_issue(fields=fields, prefetch=False), write=True)
        return ActionResult(external_id=created.key, url=self.browse_url(created.key))

    @create_issue.finder
    def find_issue(self, params: CreateIssueParams, ctx: ActionContext) -> ActionResult | None:
        marker = marker_for(self.settings.marker_label_prefix, ctx.key)
        found = self.api.get_json(
            "search/jql", {"jql": f'labels = "{marker}"', "fields": "key", "maxResults": 1}
        )
        issues = found.get("issues") or []
        if not issues:
            return None
        return ActionResult(external_id=issues[0]["key"], url=self.browse_url(issues[0]["key"]))

    def _issue_fields(self, params: CreateIssueParams, marker: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "project": {"key": params.project},
            "issuetype": {"name": params.issue_type},
            "summary": params.summary,
            "labels": [*dict.fromkeys([*params.labels, marker])],
        }
        if params.description:
            fields["description"] = markdown_to_adf(params.description)
        if params.assignee:
            fields["assignee"] = {"accountId": self._account_id(params.assignee)}
        if params.parent:
            fields["parent"] = {"key": params.parent}
        if params.original_estimate:
            fields["timetracking"] = {"originalEstimate": params.original_estimate}
        if params.due_date:
            fields["duedate"] = params.due_date.isoformat()
        fields.update(self._custom_fields(params.fields))
        return fields

    def _custom_fields(self, given: dict[str, Any]) -> dict[str, Any]:
        if not given:
            return {}
        known = self.field_ids()
        out, unknown = {}, []
        for name, value in given.items():
            field = known.get(name) or known.get(name.casefold())
            if field is None:
                unknown.append(name)
                continue
            if isinstance(value, str) and (field.get("schema") or {}).get("custom") == TEXTAREA:
                value = markdown_to_adf(value)
            out[field["id"]] = value
        if unknown:
            raise PermanentError(f"unknown Jira field(s): {', '.join(sorted(unknown))}")
        return out

    def _account_id(self, who: str) -> str:
        if "@" not in who:
            return who
        users = self.api.get_json("user/search", {"query": who}) or []
        exact = [u for u in users if (u.get("emailAddress") or "").casefold() == who.casefold()]
        chosen = exact or (users if len(users) == 1 else [])
        if not chosen:
            raise PermanentError(f"no single Jira user matches {who!r}")
        return str(chosen[0]["accountId"])

    # -- comment -----------------------------------------------------------------------

    @action("comment", CommentParams)
    def comment(self, params: CommentParams, ctx: ActionContext) -> ActionResult:
        """Comment on an issue; the comment carries the action's marker as a property."""
        marker = marker_for(self.settings.marker_label_prefix, ctx.key)
        body = {
            "body": markdown_to_adf(params.body),
            "properties": [{"key": COMMENT_PROPERTY, "value": {"marker": marker}}],
        }
        created = self.api.post_json(f"issue/{params.issue}/comment", body)
        return self._comment_result(params.issue, str(created["id"]))

    @comment.finder
    def find_comment(self, params: CommentParams, ctx: ActionContext) -> ActionResult | None:
        marker = marker_for(self.settings.marker_label_prefix, ctx.key)
        start = 0
        while True:
            page = self.api.get_json(
                f"issue/{params.issue}/comment",
                {"startAt": start, "maxResults": 100, "expand": "properties"},
            )
            comments = page.get("comments") or []
            for found in comments:
                for prop in found.get("properties") or []:
                    if (
                        prop.get("key") == COMMENT_PROPERTY
                        and (prop.get("value") or {}).get("marker") == marker
                    ):
                        return self._comment_result(params.issue, str(found["id"]))
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return None

    def _comment_result(self, issue: str, comment_id: str) -> ActionResult:
        url = f"{self.browse_url(issue)}?focusedCommentId={comment_id}"
        return ActionResult(external_id=f"{issue}/comment/{comment_id}", url=url)

    # -- transition --------------------------------------------------------------------

    @action("transition", TransitionParams, idempotent=True)
    def transition(self, params: TransitionParams, ctx: ActionContext) -> ActionResult:
        """Move an issue to a status (nothing to do when it is already there)."""
        result = ActionResult(external_id=params.issue, url=self.browse_url(params.issue))
        issue = self.api.get_json(f"issue/{params.issue}", {"fields": "status"})
        current = ((issue.get("fields") or {}).get("status") or {}).get("name") or ""
        target = params.to.casefold()
        if current.casefold() == target:
            return result
        available = self.api.get_json(f"issue/{params.issue}/transitions")
        for option in available.get("transitions") or []:
            names = {option.get("name", ""), (option.get("to") or {}).get("name", "")}
            if target in {n.casefold() for n in names}:
                self.api.post_json(
                    f"issue/{params.issue}/transitions", {"transition": {"id": option["id"]}}
                )
                return result
        raise PermanentError(f"no transition of {params.issue} from {current!r} to {params.to!r}")
