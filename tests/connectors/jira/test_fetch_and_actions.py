"""fetch (fields, version, status history), transition and comment actions."""

from __future__ import annotations

import pytest

from connectors.jira import JiraConnector
from syncd.clock import FakeClock, to_ms
from syncd.errors import PermanentError, UncertainError
from syncd.model import ObjectRef
from syncd_sandbox.jira.fake import FakeJira

from .conftest import find, perform, requests_to, run_like_executor


def _ref(key: str) -> ObjectRef:
    return ObjectRef("jira", "issue", key)


def test_fetch_reads_fields_version_and_every_status_in_order(
    connector: JiraConnector, fake_jira: FakeJira, clock: FakeClock
) -> None:
    epic = fake_jira.seed_client_epics(1)[0]
    created = to_ms(clock.now())
    issue = fake_jira.user_create(
        "OPS", "Hub upgrade", labels=["zeta", "alpha"], parent=epic.key, assignee="712020:bbbb-2222"
    )
    clock.advance(minutes=5)
    fake_jira.user_update(issue.key, status="In Progress")
    clock.advance(minutes=5)
    fake_jira.user_update(issue.key, status="Done", duedate="2026-02-01")

    seen = connector.fetch(_ref(issue.key))

    assert seen is not None
    assert seen.fields == {
        "key": issue.key,
        "summary": "Hub upgrade",
        "status": "Done",
        "status_category": "Done",
        "labels": ["alpha", "zeta"],
        "assignee": "712020:bbbb-2222",
        "assignee_name": "Grace Hopper",
        "issuetype": "Task",
        "parent": epic.key,
        "duedate": "2026-02-01",
        "project": "OPS",
        "original_estimate": None,
    }
    assert seen.version == to_ms(clock.now())
    assert seen.history["status"] == [
        (created, "To Do"),
        (created + 300_000, "In Progress"),
        (created + 600_000, "Done"),
    ]
    assert seen.context["url"] == f"{connector.settings.base_url}/browse/{issue.key}"


def test_fetch_of_a_missing_or_deleted_issue_is_none(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "Short-lived")
    fake_jira.user_delete(issue.key)
    assert connector.fetch(_ref(issue.key)) is None
    assert connector.fetch(_ref("OPS-999")) is None


def test_transition_by_status_name_through_a_differently_named_transition(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "Start me")

    perform(connector, "transition", {"issue": issue.key, "to": "In Progress"}, "t1")
    assert fake_jira.issues[issue.key].status == "In Progress"
    path = f"/rest/api/3/issue/{issue.key}/transitions"
    transitions_posted = requests_to(fake_jira, "POST", path)

    # again: already there, nothing is posted
    result = perform(connector, "transition", {"issue": issue.key, "to": "in progress"}, "t1")
    assert result.external_id == issue.key
    assert requests_to(fake_jira, "POST", path) == transitions_posted == 1
    assert fake_jira.invalid_bodies == []


def test_transition_to_an_unknown_status_is_permanent(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "Stuck")
    with pytest.raises(PermanentError, match="Blocked"):
        perform(connector, "transition", {"issue": issue.key, "to": "Blocked"}, "t2")


def test_comment_is_adf_and_its_finder_knows_it_by_the_marker(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "Talk")
    params = {"issue": issue.key, "body": "Deployed **staging**.\nSee `hub.yaml`."}

    made = perform(connector, "comment", params, "c1")

    assert fake_jira.invalid_bodies == []
    stored = fake_jira.issues[issue.key].comments
    assert len(stored) == 1 and stored[0]["body"]["type"] == "doc"
    assert find(connector, "comment", params, "c1") == made
    assert find(connector, "comment", params, "c2") is None


def test_an_ambiguous_comment_is_not_posted_twice(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "Talk twice?")
    path = f"/rest/api/3/issue/{issue.key}/comment"
    fake_jira.fail_next("POST", path, "applied_then_502")

    _, errors = run_like_executor(connector, "comment", {"issue": issue.key, "body": "hi"}, "c3")

    assert [type(e) for e in errors] == [UncertainError]
    assert len(fake_jira.issues[issue.key].comments) == 1
