"""fetch_many: hinted issues read by one `key in (...)` search (issue 17), each the same
observation `fetch` gives; Jira refuses a search naming a key that does not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.jira import JiraConnector
from syncd.clock import FakeClock
from syncd.errors import PermanentError
from syncd.model import ObjectRef
from syncd_sandbox.jira.fake import FakeJira

from .conftest import requests_to

SEARCH = "/rest/api/3/search/jql"


def _ref(key: str) -> ObjectRef:
    return ObjectRef("jira", "issue", key)


def test_fetch_many_reads_every_issue_in_one_search_as_fetch_does(
    make_connector: Callable[..., JiraConnector], fake_jira: FakeJira, clock: FakeClock
) -> None:
    # Jira's documented burst (10/s), not the module's lifted one: the 30 single fetches
    # below then wait their turn on the shared FakeClock instead of earning a 429.
    connector = make_connector(rate_limit_per_second=10)
    keys = [fake_jira.user_create("OPS", f"Issue {i}", labels=[f"l{i}"]).key for i in range(30)]
    clock.advance(minutes=1)
    fake_jira.user_update(keys[3], status="In Progress")
    refs = [_ref(k) for k in keys]
    before = requests_to(fake_jira, "GET", SEARCH)
    found = connector.fetch_many(refs)
    assert requests_to(fake_jira, "GET", SEARCH) - before == 1
    assert found == {ref: connector.fetch(ref) for ref in refs}
    assert found[refs[3]].fields["status"] == "In Progress"
    assert found[refs[3]].history["status"][-1][1] == "In Progress"


def test_a_key_that_does_not_exist_fails_the_search_as_on_jira(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    keys = [fake_jira.user_create("OPS", f"Issue {i}").key for i in range(3)]
    fake_jira.user_delete(keys[1])
    with pytest.raises(PermanentError, match="does not exist"):
        connector.fetch_many([_ref(k) for k in keys])
    assert connector.fetch(_ref(keys[1])) is None  # alone, it is simply gone
