"""poll("issue", cursor): /search/jql with an overlapping, time-zone-correct window."""

from __future__ import annotations

import json
from datetime import timedelta

from connectors.jira import JiraConnector
from syncd.clock import FakeClock, to_ms
from syncd_sandbox.jira.fake import FakeJira


def _ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [o.ref.id for o in page.observations]


def _old_search_calls(fake: FakeJira) -> list[str]:
    return [r.path for r in fake.app.log if r.path.rstrip("/").endswith("/search")]


def test_poll_returns_changes_since_the_cursor_with_an_overlap(
    connector: JiraConnector, fake_jira: FakeJira, clock: FakeClock
) -> None:
    old = fake_jira.user_create("OPS", "Old and quiet")
    clock.advance(minutes=60)
    first = fake_jira.user_create("OPS", "Seen by the first poll")
    clock.advance(seconds=30)

    page = connector.poll("issue", None)
    assert _ids(page) == [old.key, first.key]
    assert page.more is False

    # An issue updated two minutes before the cursor that the search index shows only now:
    # minute-granular JQL plus index lag is why every window starts a few minutes early.
    clock.advance(minutes=1)
    now = clock.now()
    clock.set(now - timedelta(minutes=3))
    late = fake_jira.user_create("CLI", "Indexed late")
    clock.set(now)
    fake_jira.user_update(old.key, status="In Progress")

    page = connector.poll("issue", page.cursor)

    assert _ids(page) == [late.key, first.key, old.key]  # ordered by updated, ascending
    assert page.observations[-1].fields["status"] == "In Progress"
    assert page.observations[-1].version == to_ms(now)
    assert json.loads(page.cursor)["since"] == to_ms(now)
    assert _old_search_calls(fake_jira) == []


def test_poll_leaves_out_what_changed_before_the_window(
    connector: JiraConnector, fake_jira: FakeJira, clock: FakeClock
) -> None:
    quiet = fake_jira.user_create("OPS", "Quiet")
    clock.advance(minutes=30)
    busy = fake_jira.user_create("OPS", "Busy")
    cursor = connector.poll("issue", None).cursor
    clock.advance(minutes=10)
    fake_jira.user_update(busy.key, summary="Busy, renamed")

    page = connector.poll("issue", cursor)

    assert quiet.key not in _ids(page)
    assert _ids(page) == [busy.key]
    jql = [r.arg("jql") for r in fake_jira.app.log if r.path == "/rest/api/3/search/jql"][-1]
    # 09:30 UTC minus the 3 minute overlap, written in the API user's zone (Los Angeles)
    assert jql == (
        '(project in ("OPS", "CLI")) AND updated >= "2026-01-05 01:27" ORDER BY updated ASC'
    )


def test_poll_pages_with_next_page_token_and_moves_the_cursor_at_the_end(
    make_connector,
    fake_jira: FakeJira,
    clock: FakeClock,  # type: ignore[no-untyped-def]
) -> None:
    connector: JiraConnector = make_connector(page_size=2)
    created = []
    for n in range(5):
        created.append(fake_jira.user_create("OPS", f"Issue {n}"))
        clock.advance(minutes=1)

    seen, cursor, pages = [], None, 0
    while True:
        page = connector.poll("issue", cursor)
        seen += _ids(page)
        cursor, pages = page.cursor, pages + 1
        if not page.more:
            break

    assert seen == [i.key for i in created]
    assert pages == 3
    assert json.loads(cursor)["since"] == created[-1].updated
    tokens = [
        r.arg("nextPageToken") for r in fake_jira.app.log if r.path == "/rest/api/3/search/jql"
    ]
    assert tokens[0] is None and all(tokens[1:])
    assert _old_search_calls(fake_jira) == []


def test_poll_with_nothing_new_keeps_the_cursor_and_rereads_only_the_overlap(
    connector: JiraConnector, fake_jira: FakeJira, clock: FakeClock
) -> None:
    quiet = fake_jira.user_create("OPS", "Quiet")
    clock.advance(minutes=30)
    last = fake_jira.user_create("OPS", "Last change")
    first = connector.poll("issue", None)
    clock.advance(minutes=20)

    page = connector.poll("issue", first.cursor)

    # the newest change is inside the overlap, so it comes again with the same version (the
    # engine ignores it); nothing older does, and the cursor stays where it was
    assert [(o.ref.id, o.version) for o in page.observations] == [(last.key, last.updated)]
    assert quiet.key not in _ids(page)
    assert json.loads(page.cursor)["since"] == json.loads(first.cursor)["since"]


def test_the_poll_restriction_comes_from_jql_poll_when_set(
    make_connector,
    fake_jira: FakeJira,  # type: ignore[no-untyped-def]
) -> None:
    connector: JiraConnector = make_connector(jql_poll="project = CLI AND labels = client-epic")
    epic = fake_jira.seed_client_epics(1)[0]
    fake_jira.user_create("OPS", "Elsewhere", labels=["client-epic"])

    assert _ids(connector.poll("issue", None)) == [epic.key]
