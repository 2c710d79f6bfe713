"""Jira's own rules for a create-issue body, beyond what the OpenAPI schema can say.

The schema accepts any `fields` object; Jira then refuses, field by field, with
`{"errorMessages": [], "errors": {"<field>": "<why>"}}`. These are the rules the fake applies,
with Jira's wording where it is known.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from connectors.jira.adf import adf_problems
from syncd_sandbox.jira.fake_model import ISSUE_TYPES

if TYPE_CHECKING:
    from syncd_sandbox.jira.fake import FakeJira

ESTIMATE = re.compile(r"^\s*(\d+\s*[wdhm]\s*)+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _ref(value: Any, *keys: str) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in keys:
        if isinstance(value.get(key), str | int):
            return str(value[key])
    return None


def create_problems(body: dict[str, Any], jira: FakeJira) -> tuple[dict[str, str], dict[str, Any]]:
    """(errors by field, values to store). Errors empty: the issue can be created."""
    fields = body.get("fields") or {}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"custom": {}}

    project = _ref(fields.get("project"), "key", "id")
    by_id = {pid: key for key, pid in jira.projects.items()}
    project_key = by_id.get(project or "") or (project or "").upper()
    if project_key not in jira.projects:
        errors["project"] = "Specify a valid project ID or key"
    values["project"] = project_key

    issuetype = _ref(fields.get("issuetype"), "name", "id")
    names = {tid: name for name, (tid, _) in ISSUE_TYPES.items()}
    type_name = names.get(issuetype or "") or issuetype
    if type_name not in ISSUE_TYPES:
        errors["issuetype"] = "Specify an issue type"
    values["issuetype"] = type_name

    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255 or "\n" in summary:
        errors["summary"] = "Summary must be less than 255 characters and on one line."
    values["summary"] = summary

    for name, value in fields.items():
        if name in ("project", "issuetype", "summary"):
            continue
        problem = _field_problem(name, value, jira, values)
        if problem:
            errors[name] = problem
    return errors, values


def _field_problem(name: str, value: Any, jira: FakeJira, values: dict[str, Any]) -> str | None:
    if name == "description":
        if value is None:
            return None
        problems = adf_problems(value)
        values["description"] = value
        return problems[0] if problems else None
    if name == "labels":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "labels must be a list of strings"
        if any(" " in v or not v for v in value):
            return "The label can't contain spaces."
        values["labels"] = list(dict.fromkeys(value))
        return None
    if name == "assignee":
        account = _ref(value, "accountId", "id")
        if value is not None and account not in jira.users:
            return f"The user with account ID '{account}' does not exist"
        values["assignee"] = account
        return None
    if name == "parent":
        key = _ref(value, "key", "id")
        parent = jira.find(key or "")
        if parent is None:
            return "Could not find issue by id or key."
        values["parent"] = parent.key
        return None
    if name == "duedate":
        if value is not None and not (isinstance(value, str) and DATE.match(value)):
            return f"Error parsing date string: {value}"
        values["duedate"] = value
        return None
    if name == "timetracking":
        estimate = value.get("originalEstimate") if isinstance(value, dict) else None
        if estimate is not None and not (isinstance(estimate, str) and ESTIMATE.match(estimate)):
            return "Specify a valid duration. Example: 3w 4d 12h"
        values["original_estimate"] = estimate
        return None
    custom = {fid: kind for fid, _, kind, is_custom in jira.fields if is_custom}
    if name in custom:
        if value is not None and not isinstance(value, str):
            return f"Operation value must be a string for {jira.field_name(name)}"
        values["custom"][name] = value
        return None
    return f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
