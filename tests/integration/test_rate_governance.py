"""Issue #16's acceptance: a backlog of 1,000 actions per API, drained by the real executor
through the real client library over real HTTP to the fake, whose real (documented) limits
it enforces: 0 limit answers, 0 requests before a Retry-After, and a drain rate of at least
90% of the limit, never above it in any window of the fake's.

The fake, the connector and the executor share one FakeClock: a request that waits for its
governor moves the clock instead of sleeping, and the drain loop moves it to the next due
action, as the daemon's loop would sleep. So the limits are the documented ones (Airtable
5/s per base, HubSpot 100 per 10 s, Jira's cost budget, GitHub 500 writes/h) and a backlog
of hours runs in seconds of real time. The figures are printed (see `report_figure`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.airtable import AirtableConnector, AirtableSettings
from connectors.github import GitHubConnector, GitHubSettings
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.jira import JiraConnector, JiraSettings
from syncd.clock import FakeClock, to_ms
from syncd.connector import Connector
from syncd.errors import TransientError
from syncd.executor import Executor
from syncd.ingest import insert_actions
from syncd.mapping.rules import PlannedAction
from syncd.model import ObjectRef
from syncd.store.db import Store, open_store
from syncd.store.schema import actions
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse, FakeServer
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.jira.fake import FakeJira

BACKLOG = 1000
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class World:
    """One API's fake and connector, and what the test measures against."""

    name: str
    connector: Connector
    app: FakeApp
    action: str
    params: Callable[[int], dict[str, Any]]
    limit: tuple[float, float]  # the binding limit: units per seconds (as the fake counts)
    cost: Callable[[str], int]  # units a request of this method takes in that limit
    violations: Callable[[], dict[str, int]]  # the fake's own counts, each must stay 0
    stamps: list[tuple[float, str]] = field(default_factory=list)  # (time, method) arrived


def _record(world: World, clock: FakeClock) -> None:
    """Stamp every request the fake receives, before its own limits look at it."""

    def stamp(request: FakeRequest) -> FakeResponse | None:
        world.stamps.append((clock.now().timestamp(), request.method))
        return None

    world.app.before.insert(0, stamp)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    yield opened
    opened.dispose()


def _airtable(clock: FakeClock, stack: list[Any]) -> World:
    fake = FakeAirtable(token="patTest.not-real", base_id="appBacklog00001", clock=clock)
    fake.create_table("Leads", {"Name": "singleLineText", "Status": "singleSelect"})
    ids = [fake.user_create("Leads", {"Name": f"lead {n}"}) for n in range(BACKLOG)]
    server = FakeServer(fake.app).__enter__()
    stack.append(server)
    connector = AirtableConnector(
        AirtableSettings(
            token=SecretStr("patTest.not-real"),
            base_id="appBacklog00001",
            tables={"lead": "Leads"},
            base_url=server.url,
            timeout_seconds=5,
        ),
        clock=clock,
    )
    return World(
        "Airtable",
        connector,
        fake.app,
        "update",
        lambda n: {
            "table": "lead",
            "record_id": ids[n],
            "fields": {"Status": "Contacted"},
            "typecast": True,
        },
        (5, 1.0),
        lambda method: 1,
        lambda: {"over the limit or locked out": fake.over_limit_requests},
    )


def _hubspot(clock: FakeClock, stack: list[Any]) -> World:
    fake = FakeHubSpot(clock=clock)
    deals = [fake.create_deal(dealname=f"deal {n}") for n in range(20)]
    server = fake.serve().__enter__()
    stack.append(server)
    connector = HubSpotConnector(
        HubSpotSettings(
            access_token=fake.token,
            app_secret=fake.app_secret,
            base_url=server.url,
            portal_id=62515,
            timeout_seconds=5,
        ),
        clock,
    )
    return World(
        "HubSpot",
        connector,
        fake.app,
        "update_deal",
        lambda n: {
            "deal_id": deals[n % len(deals)],
            "properties": {"dealname": f"deal {n}, updated"},
        },
        (100, 10.0),
        lambda method: 1,
        lambda: {
            "over the limit": fake.limits.over_limit,
            "before Retry-After": fake.limits.early_requests,
        },
    )


def _jira(clock: FakeClock, stack: list[Any]) -> World:
    fake = FakeJira(clock=clock, email="syncd@example.org", api_token="jira-token-not-real")
    issue = fake.user_create("OPS", "backlog target")
    server = FakeServer(fake.app).__enter__()
    stack.append(server)
    connector = JiraConnector(
        JiraSettings(
            base_url=server.url,
            email="syncd@example.org",
            api_token=SecretStr("jira-token-not-real"),
            projects=["OPS"],
            timeout_seconds=5.0,
        ),
        clock=clock,
    )
    limits = fake.rate_limit
    return World(
        "Jira",
        connector,
        fake.app,
        "comment",
        lambda n: {"issue": issue.key, "body": f"comment {n}"},
        (limits.cost_budget, limits.cost_window),
        lambda method: limits.write_cost if method in WRITES else 1,
        lambda: {"over the limit": limits.over_limit, "before Retry-After": limits.early_requests},
    )


def _github(clock: FakeClock, stack: list[Any]) -> World:
    fake = FakeGitHub(clock=clock, token="ghp_backlog-not-real", login="syncd-bot")
    fake.add_repo("acme/infrastructure")
    fake.__enter__()
    stack.append(fake)
    connector = GitHubConnector(
        GitHubSettings(
            token="ghp_backlog-not-real",
            base_url=fake.base_url,
            repositories=["acme/infrastructure"],
            webhook_secret="s",
            timeout_seconds=5,
        ),
        clock=clock,
    )
    return World(
        "GitHub",
        connector,
        fake.app,
        "create_issue",
        lambda n: {"repo": "acme/infrastructure", "title": f"backlog {n}"},
        (fake.writes_per_hour, 3600.0),
        lambda method: 1 if method in WRITES else 0,  # the secondary limit's count
        lambda: {
            "secondary": fake.secondary_limited,
            "primary": fake.primary_limited,
            "before Retry-After": fake.early_requests,
        },
    )


WORLDS = {"airtable": _airtable, "hubspot": _hubspot, "jira": _jira, "github": _github}


def _plan(store: Store, world: World, now: datetime) -> None:
    planned = [
        PlannedAction(
            key=f"backlog-{n}",
            rule_id="backlog",
            connector=world.connector.name,
            action=world.action,
            params=world.params(n),
            ref=None,
            guarantee="at_least_once",
        )
        for n in range(BACKLOG)
    ]
    with store.tx() as conn:
        assert insert_actions(store, conn, planned, to_ms(now)) == BACKLOG


def _drain(executor: Executor, store: Store, clock: FakeClock) -> None:
    """The daemon's loop on the fake clock: run what is due; when nothing is, sleep (move
    the clock) until the next action is due."""
    for _ in range(100_000):
        if executor.run_due(50):
            continue
        with store.engine.connect() as conn:
            due = conn.execute(
                select(func.min(actions.c.next_attempt_at)).where(
                    actions.c.status.in_(("pending", "in_flight"))
                )
            ).scalar()
        if due is None:
            return
        clock.advance(seconds=max(0.001, (due - to_ms(clock.now())) / 1000))
    raise AssertionError("the backlog did not drain")


def _most_in_any_window(stamps: list[tuple[float, int]], seconds: float) -> int:
    """The most units that arrived within any `seconds` (a sliding window, as the fakes count)."""
    most, total, first = 0, 0, 0
    for last in range(len(stamps)):
        total += stamps[last][1]
        while stamps[first][0] <= stamps[last][0] - seconds:
            total -= stamps[first][1]
            first += 1
        most = max(most, total)
    return most


def _rate_per_window(stamps: list[tuple[float, int]], seconds: float) -> tuple[float, int]:
    """Units per window over the whole windows from the first request. (A windowed budget
    drains in bursts, so "N / elapsed" would depend on where the backlog happens to end.)"""
    windows = int((stamps[-1][0] - stamps[0][0]) // seconds)
    assert windows >= 1, "the backlog must span several windows to measure a rate"
    end = stamps[0][0] + windows * seconds
    return sum(units for at, units in stamps if at < end) / windows, windows


@pytest.mark.parametrize("api", sorted(WORLDS))
def test_a_backlog_of_1000_drains_at_90_percent_of_the_limit_and_never_above(
    api: str,
    clock: FakeClock,
    store: Store,
    report_figure: Callable[[str], None],
) -> None:
    stack: list[Any] = []
    world = WORLDS[api](clock, stack)
    try:
        _record(world, clock)
        connectors = {world.connector.name: world.connector}
        # lookup_window 0: these are live actions (planned after the start), no look-ups.
        executor = Executor(store, connectors, clock, lookup_window_seconds=0)
        _plan(store, world, clock.now())
        _drain(executor, store, clock)
    finally:
        world.connector.close()
        for running in reversed(stack):
            running.__exit__(None, None, None)

    with store.engine.connect() as conn:
        statuses = dict(
            conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all()
        )
    assert statuses == {"done": BACKLOG}
    assert world.violations() == dict.fromkeys(world.violations(), 0)

    units = [(at, world.cost(method)) for at, method in world.stamps if world.cost(method)]
    allowed, per_seconds = world.limit
    assert _most_in_any_window(units, per_seconds) <= allowed
    # The steady rate: from the second window on (the first also holds the client's one-off
    # start-up reads, such as Jira's serverInfo, which leave a write's cost unused in it).
    steady = [u for u in units if u[0] >= units[0][0] + per_seconds]
    rate, windows = _rate_per_window(steady, per_seconds)
    elapsed = units[-1][0] - units[0][0]
    unit = "cost points" if api == "jira" else "requests"
    report_figure(
        f"{world.name}: {BACKLOG} actions, {len(world.stamps)} requests in "
        f"{elapsed:.0f} s (fake clock): {rate:.1f} {unit} per {per_seconds:g} s "
        f"(over {windows} whole windows) against {allowed} ({rate / allowed:.1%}); "
        f"limit answers and early requests: {world.violations()}"
    )
    assert rate >= 0.9 * allowed - 1e-9


@pytest.mark.parametrize("then", ["read", "write"])
def test_a_429_on_a_read_stops_reads_and_writes_until_retry_after(
    then: str,
    clock: FakeClock,
    store: Store,
) -> None:
    """Jira's cost budget answers a read with 429 + Retry-After; the next request of either
    kind (a read by a poller, a write by the executor) is sent only after it has passed."""
    fake = FakeJira(clock=clock, email="syncd@example.org", api_token="jira-token-not-real")
    fake.rate_limit.burst_per_second = 10_000  # only the cost budget (100 per 10 s) binds
    issue = fake.user_create("OPS", "target")
    with FakeServer(fake.app) as server:
        # A connector that believes it may send far more, so that the fake answers 429.
        connector = JiraConnector(
            JiraSettings(
                base_url=server.url,
                email="syncd@example.org",
                api_token=SecretStr("jira-token-not-real"),
                projects=["OPS"],
                timeout_seconds=5.0,
                rate_limit_per_second=10_000,
                cost_budget=100_000,
            ),
            clock=clock,
        )
        try:
            ref = ObjectRef("jira", "issue", issue.key)
            with pytest.raises(TransientError) as refused:
                for _ in range(200):
                    connector.fetch(ref)
            assert fake.rate_limit.over_limit == 1
            retry_after = refused.value.retry_after
            assert retry_after is not None and retry_after >= 1
            refused_at = clock.now()
            sent_before = len(fake.app.log)

            if then == "read":
                assert connector.fetch(ref) is not None
            else:
                executor = Executor(store, {"jira": connector}, clock, lookup_window_seconds=0)
                with store.tx() as conn:
                    insert_actions(
                        store,
                        conn,
                        [
                            PlannedAction(
                                key="after-429",
                                rule_id="r",
                                connector="jira",
                                action="comment",
                                params={"issue": issue.key, "body": "after the 429"},
                                ref=None,
                                guarantee="at_least_once",
                            )
                        ],
                        to_ms(clock.now()),
                    )
                _drain(executor, store, clock)
                assert fake.issues[issue.key].comments != []
        finally:
            connector.close()

    assert len(fake.app.log) > sent_before  # the request did go, once allowed
    assert fake.rate_limit.early_requests == 0
    assert (clock.now() - refused_at).total_seconds() >= retry_after


def test_an_action_waiting_for_its_turn_is_deferred_not_held_and_wakes_the_loop_in_time(
    clock: FakeClock,
    store: Store,
) -> None:
    """The executor asks the governor before marking an action in flight: with the budget
    spent, the action stays pending (no attempt counted, no lease) until the governor's
    turn, and an idle executor thread sleeps until then, not a whole tick longer."""
    stack: list[Any] = []
    world = _hubspot(clock, stack)
    try:
        governor = world.connector.governors()[0]
        for _ in range(90):  # 90% of HubSpot's 100 per 10 s, spent by another thread
            with governor.permit("write"):
                pass
        executor = Executor(store, {"hubspot": world.connector}, clock, lookup_window_seconds=0)
        with store.tx() as conn:
            insert_actions(
                store,
                conn,
                [
                    PlannedAction(
                        key="waits",
                        rule_id="r",
                        connector="hubspot",
                        action=world.action,
                        params=world.params(0),
                        ref=None,
                        guarantee="at_least_once",
                    )
                ],
                to_ms(clock.now()),
            )
        assert executor.run_due(10) == []
        with store.engine.connect() as conn:
            row = conn.execute(select(actions)).mappings().one()
        assert (row["status"], row["attempts"], row["lease_owner"]) == ("pending", 0, None)
        assert 9.9 <= (row["next_attempt_at"] - to_ms(clock.now())) / 1000 <= 10.1
        assert 9.9 <= executor.idle_seconds(60.0) <= 10.1
        _drain(executor, store, clock)
        assert world.violations() == {"over the limit": 0, "before Retry-After": 0}
    finally:
        world.connector.close()
        for running in reversed(stack):
            running.__exit__(None, None, None)
