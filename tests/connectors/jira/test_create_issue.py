"""create_issue through python-jira against the fake: what Jira receives and keeps."""

from __future__ import annotations

import pytest

from connectors.jira import JiraConnector
from connectors.jira.actions import marker_for
from syncd.errors import PermanentError
from syncd_sandbox.jira.fake import FakeJira

from .conftest import find, perform

CUSTOMER_REVIEW = {
    "project": "CLI",
    "issue_type": "Task",
    "summary": "Client strategy review: Ocean",
    "description": "# Review\n\nCheck **usage** and [the hub](https://ocean.example.org).\n\n"
    "- costs\n- support hours",
    "labels": ["client-review"],
    "assignee": "ada@example.org",
    "original_estimate": "3h",
    "due_date": "2026-03-31",
    "fields": {"Account": "Ocean Hub"},
}
KEY = "rule:w8:CLI-1:2026Q1"


def test_create_issue_sends_a_valid_body_and_jira_keeps_every_value(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    epic = fake_jira.seed_client_epics(1)[0]

    result = perform(connector, "create_issue", {**CUSTOMER_REVIEW, "parent": epic.key}, KEY)

    assert fake_jira.spec.enabled
    assert fake_jira.invalid_bodies == []
    issue = fake_jira.issues[result.external_id]
    assert issue.original_estimate == "3h"
    assert issue.parent == epic.key
    assert issue.custom == {"customfield_10010": "Ocean Hub"}
    assert issue.assignee == "712020:aaaa-1111"
    assert issue.duedate == "2026-03-31"
    assert issue.description["type"] == "doc"
    assert issue.description["content"][0]["type"] == "heading"
    assert sorted(issue.labels) == sorted(["client-review", marker_for("syncd-", KEY)])
    assert result.url == f"{connector.settings.base_url}/browse/{issue.key}"


def test_the_finder_finds_the_issue_by_its_marker_and_only_that_one(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    created = perform(connector, "create_issue", CUSTOMER_REVIEW, "key-one")

    assert find(connector, "create_issue", CUSTOMER_REVIEW, "key-one") == created
    assert find(connector, "create_issue", CUSTOMER_REVIEW, "key-two") is None


def test_an_unknown_custom_field_is_a_permanent_error_and_nothing_is_created(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    with pytest.raises(PermanentError, match="No Such Field"):
        perform(connector, "create_issue", {**CUSTOMER_REVIEW, "fields": {"No Such Field": 1}}, KEY)
    assert fake_jira.issues == {}


def test_jira_refusing_the_body_is_a_permanent_error(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    with pytest.raises(PermanentError, match="valid project"):
        perform(connector, "create_issue", {**CUSTOMER_REVIEW, "project": "NOPE"}, KEY)
    assert [b["problems"] for b in fake_jira.invalid_bodies] == [
        {"project": "Specify a valid project ID or key"}
    ]


def test_params_refuse_a_bad_estimate_and_labels_with_spaces(connector: JiraConnector) -> None:
    model = connector.actions["create_issue"].params
    with pytest.raises(ValueError, match="duration"):
        model.model_validate({**CUSTOMER_REVIEW, "original_estimate": "three hours"})
    with pytest.raises(ValueError, match="spaces"):
        model.model_validate({**CUSTOMER_REVIEW, "labels": ["two words"]})


def test_blank_optional_params_from_templates_mean_not_set(connector: JiraConnector) -> None:
    params = connector.actions["create_issue"].params.model_validate(
        {**CUSTOMER_REVIEW, "assignee": "", "due_date": " ", "parent": "", "description": ""}
    )
    assert (params.assignee, params.due_date, params.parent, params.description) == (
        None,
        None,
        None,
        None,
    )


def test_a_summary_over_jiras_limit_is_cut_to_255_characters_with_an_ellipsis(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    long = {**CUSTOMER_REVIEW, "summary": "Client strategy review: " + "Ocean " * 100}
    result = perform(connector, "create_issue", long, "long-summary")
    summary = fake_jira.issues[result.external_id].summary
    assert len(summary) == 255
    assert summary.startswith("Client strategy review: Ocean") and summary.endswith("\u2026")
