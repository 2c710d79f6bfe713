"""query("issue", {"jql": ...}) for cron for-each rules (W8: client epics not done)."""

from __future__ import annotations

import pytest

from connectors.jira import JiraConnector
from syncd.errors import PermanentError
from syncd_sandbox.jira.fake import FakeJira

W8_JQL = 'labels = "client-epic" AND issuetype = Epic AND statusCategory != Done'


def test_a_query_over_30_client_epics_pages_through_next_page_token(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.seed_client_epics(30)
    fake_jira.user_create("CLI", "Not an epic", labels=["client-epic"])

    found = list(connector.query("issue", {"jql": W8_JQL, "page_size": 7}))

    assert len(found) == 30
    assert len({o.ref.id for o in found}) == 30
    assert {o.fields["issuetype"] for o in found} == {"Epic"}
    searches = [r for r in fake_jira.app.log if r.path == "/rest/api/3/search/jql"]
    assert len(searches) == 5  # 7 + 7 + 7 + 7 + 2
    assert sum(1 for r in searches if r.arg("nextPageToken")) == 4


def test_done_epics_are_left_out(connector: JiraConnector, fake_jira: FakeJira) -> None:
    epics = fake_jira.seed_client_epics(3)
    fake_jira.user_update(epics[1].key, status="Done")

    found = [o.ref.id for o in connector.query("issue", {"jql": W8_JQL})]

    assert sorted(found) == sorted([epics[0].key, epics[2].key])


def test_a_query_without_jql_is_a_permanent_error(connector: JiraConnector) -> None:
    with pytest.raises(PermanentError, match="invalid Jira query"):
        list(connector.query("issue", {"where": {}}))


def test_jql_jira_cannot_parse_is_a_permanent_error(connector: JiraConnector) -> None:
    with pytest.raises(PermanentError, match="does not exist"):
        list(connector.query("issue", {"jql": "colour = red"}))
