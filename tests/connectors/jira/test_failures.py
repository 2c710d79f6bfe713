"""Ambiguous writes, connection resets and 429s: one ticket, one retry layer, Retry-After."""

from __future__ import annotations

import pytest
from jira import JIRA
from pydantic import SecretStr

from connectors.jira import JiraConnector
from syncd.clock import FakeClock
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.model import ObjectRef
from syncd_sandbox.jira.fake import FakeJira

from .conftest import EMAIL, TOKEN, perform, requests_to, run_like_executor

PARAMS = {"project": "OPS", "summary": "Client Briefing: Ocean", "original_estimate": "3h"}
CREATE = "/rest/api/3/issue"


def test_applied_then_502_is_uncertain_and_the_retry_finds_the_ticket(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.fail_next("POST", CREATE, "applied_then_502")

    result, errors = run_like_executor(connector, "create_issue", PARAMS, "w9:deal-42")

    assert [type(e) for e in errors] == [UncertainError]
    assert list(fake_jira.issues) == [result.external_id]
    assert requests_to(fake_jira, "POST", CREATE) == 1


@pytest.mark.parametrize("kind", ["applied_then_reset", "reset"])
def test_a_reset_connection_on_create_leaves_one_ticket(
    connector: JiraConnector, fake_jira: FakeJira, kind: str
) -> None:
    fake_jira.fail_next("POST", CREATE, kind)

    result, errors = run_like_executor(connector, "create_issue", PARAMS, "w9:deal-43")

    assert [type(e) for e in errors] == [UncertainError]
    assert list(fake_jira.issues) == [result.external_id]
    # the reset attempt was sent once (python-jira did not re-send it), then the executor's
    # retry: created again only when the first was not applied
    assert requests_to(fake_jira, "POST", CREATE) == (1 if kind == "applied_then_reset" else 2)


def test_python_jira_own_session_would_resend_after_a_reset(
    server: object, fake_jira: FakeJira, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap the connector avoids: python-jira's default session retries a POST after a
    connection error, which is a duplicate ticket when the first one was applied."""
    monkeypatch.setattr("jira.resilientsession.time.sleep", lambda _s: None)
    client = JIRA(
        server=server.url,
        basic_auth=(EMAIL, TOKEN),  # type: ignore[attr-defined]
        options={"rest_api_version": "3"},
        get_server_info=False,
    )
    fake_jira.fail_next("POST", CREATE, "applied_then_reset")
    try:
        client.create_issue(
            fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "dup?"},
            prefetch=False,
        )
    finally:
        client.close()
    assert len(fake_jira.issues) == 2


def test_a_429_is_transient_with_retry_after_and_blocks_the_limiter(
    connector: JiraConnector, fake_jira: FakeJira, clock: FakeClock
) -> None:
    fake_jira.seed_client_epics(1)
    fake_jira.fail_next("GET", "/rest/api/3/search/jql", "429", retry_after=30)

    with pytest.raises(TransientError) as failed:
        list(connector.query("issue", {"jql": "labels = client-epic"}))
    assert failed.value.retry_after == 30
    assert not isinstance(failed.value, UncertainError)

    before = clock.now()
    assert len(list(connector.query("issue", {"jql": "labels = client-epic"}))) == 1
    assert (clock.now() - before).total_seconds() >= 30  # waited (on the fake clock)


def test_requests_drain_at_the_configured_rate(
    make_connector: object, fake_jira: FakeJira, clock: FakeClock
) -> None:
    connector = make_connector(rate_limit_per_second=5)  # type: ignore[operator]
    fake_jira.seed_client_epics(1)
    start = clock.now()
    for _ in range(20):
        assert len(list(connector.query("issue", {"jql": "project = CLI"}))) == 1
    assert requests_to(fake_jira, "GET", "/rest/api/3/search/jql") == 20
    # 21 requests (serverInfo + 20 searches) at 5 per second: at least 4 s on the fake clock
    assert (clock.now() - start).total_seconds() >= 4
    assert connector.governor.waits > 0


def test_a_server_error_on_a_read_is_transient_not_uncertain(
    connector: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = fake_jira.user_create("OPS", "x")
    fake_jira.fail_next("GET", f"/rest/api/3/issue/{issue.key}", "503")
    with pytest.raises(TransientError) as failed:
        connector.fetch(ObjectRef("jira", "issue", issue.key))
    assert type(failed.value) is TransientError


def test_an_unreachable_jira_is_transient_even_for_a_write(
    make_connector: object,
) -> None:
    connector = make_connector(base_url="http://127.0.0.1:9")  # type: ignore[operator]
    with pytest.raises(TransientError) as failed:
        perform(connector, "create_issue", PARAMS, "k")
    assert type(failed.value) is TransientError
    assert TOKEN not in str(failed.value)


def test_a_wrong_token_is_permanent_and_the_token_never_appears_in_the_error(
    make_connector: object,
) -> None:
    connector = make_connector(api_token=SecretStr("wrong-token-value"))  # type: ignore[operator]
    with pytest.raises(PermanentError) as failed:
        perform(connector, "create_issue", PARAMS, "k")
    assert "401" in str(failed.value)
    assert "wrong-token-value" not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
