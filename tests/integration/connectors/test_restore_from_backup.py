"""A store restored from an older backup, or a brand-new one, repeats no effect.

The SQLite file is copied while syncd works; more deals are won and their issues opened;
then the old copy is put back and syncd runs again. It reads again the wins the old copy
does not remember, and finds again the action that was pending in the copy: each looks for
its hidden marker in GitHub first, so no issue is opened twice. Fake HubSpot and fake GitHub
through their real client libraries."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.github import GitHubConnector, GitHubSettings
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from syncd.clock import FakeClock
from syncd.engine import Engine
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import action_rows, make_config, make_engine

REPO = "acme/infrastructure"
RULES = """
rules:
  - id: new-hub
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    once_per_object: true
    do:
      - github.create_issue:
          repo: acme/infrastructure
          title: "New Hub: {{ deal.dealname }}"
          body: "Deploy a hub for {{ deal.dealname }}."
"""


@dataclass
class Accounts:
    clock: FakeClock
    hubspot: FakeHubSpot
    hubspot_url: str
    github: FakeGitHub
    tmp_path: Path

    def engine(self, state: str, **executor: float) -> Engine:
        hs = HubSpotSettings(
            access_token=self.hubspot.token,
            base_url=self.hubspot_url,
            timeout_seconds=5,
            poll_context=False,
        )
        gh = GitHubSettings(
            token="ghp_restore-test-token",
            base_url=self.github.base_url,
            repositories=[REPO],
            timeout_seconds=5,
        )
        url = f"sqlite:///{self.tmp_path / state / 'syncd.sqlite3'}"
        (self.tmp_path / state).mkdir(exist_ok=True)
        config = make_config(
            self.tmp_path / state, url, RULES, {"hubspot": hs, "github": gh}, **executor
        )
        return make_engine(
            config,
            self.clock,
            {
                "hubspot": HubSpotConnector(hs, self.clock),
                "github": GitHubConnector(gh, self.clock),
            },
        )

    def win(self, name: str) -> str:
        deal = self.hubspot.create_deal(dealname=name, dealstage="qualified")
        self.hubspot.move_deal(deal, "closedwon")
        self.hubspot.portal.take_events()  # left to polling
        return deal

    def issues(self) -> Counter[str]:
        return Counter(i.title for i in self.github.issues(REPO))


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    clock = FakeClock()
    hubspot = FakeHubSpot(clock=clock)
    github = FakeGitHub(clock=clock, token="ghp_restore-test-token", login="syncd-bot")
    github.add_repo(REPO)
    with hubspot.serve() as api, github:
        yield Accounts(clock, hubspot, api.url, github, tmp_path)


def _copy_store(src: Path, dst: Path) -> None:
    """What a backup does: the database file (and its WAL, if any) as they are on disk."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.glob("syncd.sqlite3*"):
        if not item.name.endswith(".lock"):
            shutil.copy2(item, dst / item.name)


def test_restoring_an_old_copy_of_the_store_opens_no_issue_twice(accounts: Accounts) -> None:
    engine = accounts.engine("state")
    engine.run_once()  # go live
    accounts.clock.advance(600)
    accounts.win("Ocean")
    engine.run_once()
    accounts.clock.advance(600)
    accounts.win("Glacier")
    engine.poller.poll_all()  # planned, still pending when the backup is taken
    assert [r["status"] for r in action_rows(engine)] == ["done", "pending"]
    engine.close()
    _copy_store(accounts.tmp_path / "state", accounts.tmp_path / "backup")

    engine = accounts.engine("state")
    accounts.clock.advance(600)
    accounts.win("Desert")
    accounts.win("Forest")
    engine.run_once()
    engine.close()
    assert accounts.issues() == Counter(
        {f"New Hub: {n}": 1 for n in ("Ocean", "Glacier", "Desert", "Forest")}
    )

    shutil.rmtree(accounts.tmp_path / "state")
    _copy_store(accounts.tmp_path / "backup", accounts.tmp_path / "state")  # the restore
    accounts.clock.advance(hours=2)
    engine = accounts.engine("state")
    engine.run_once()
    rows = {r["object_id"]: r for r in action_rows(engine)}
    assert len(rows) == 4 and {r["status"] for r in rows.values()} == {"done"}
    assert accounts.issues() == Counter(
        {f"New Hub: {n}": 1 for n in ("Ocean", "Glacier", "Desert", "Forest")}
    )  # 0 duplicates

    accounts.clock.advance(hours=1)  # live again: a new win opens its one issue
    accounts.win("Steppe")
    engine.run_once()
    engine.close()
    assert accounts.issues()["New Hub: Steppe"] == 1 and sum(accounts.issues().values()) == 5


def test_a_change_from_before_the_restart_looks_first_even_after_the_window(
    accounts: Accounts,
) -> None:
    """The look-up depends on when the change happened, not only on when it is read: a win
    made while syncd was down, read long after the restart, still looks for its marker."""
    engine = accounts.engine("state", lookup_window_seconds=0)
    engine.run_once()
    accounts.clock.advance(600)
    accounts.win("Ocean")
    engine.run_once()
    _copy_store(accounts.tmp_path / "state", accounts.tmp_path / "backup")
    accounts.clock.advance(600)
    accounts.win("Tundra")
    engine.run_once()
    engine.close()

    shutil.rmtree(accounts.tmp_path / "state")
    _copy_store(accounts.tmp_path / "backup", accounts.tmp_path / "state")
    accounts.clock.advance(60)
    engine = accounts.engine("state", lookup_window_seconds=0)
    accounts.clock.advance(hours=3)  # the first poll comes long after the start
    engine.run_once()
    engine.close()
    assert accounts.issues() == Counter({"New Hub: Ocean": 1, "New Hub: Tundra": 1})


def test_a_second_daemon_with_a_new_store_repeats_nothing(accounts: Accounts) -> None:
    """A lost store: a new state directory over the same accounts goes live and baselines
    what the first one already acted on."""
    first = accounts.engine("state")
    first.run_once()
    for name in ("Ocean", "Glacier", "Desert"):
        accounts.clock.advance(600)
        accounts.win(name)
    first.run_once()
    first.close()
    accounts.clock.advance(600)
    second = accounts.engine("new-state")
    second.run_once()
    assert action_rows(second) == []
    accounts.clock.advance(600)
    accounts.win("Forest")
    second.run_once()
    second.close()
    assert accounts.issues() == Counter(
        {f"New Hub: {n}": 1 for n in ("Ocean", "Glacier", "Desert", "Forest")}
    )


def test_a_live_change_just_after_the_start_skips_the_look_up(accounts: Accounts) -> None:
    """Only changes from before the start look first: a win made after it, inside the
    window that schedule catch-ups use, costs one request (the create), not a search too."""
    engine = accounts.engine("state")
    engine.run_once()  # go live
    accounts.clock.advance(30)  # well inside the default 300 s window
    accounts.win("Ocean")
    engine.poller.poll_all()
    before = accounts.github.rate_limit_used
    engine.executor.drain()
    engine.close()
    assert accounts.issues() == Counter({"New Hub: Ocean": 1})
    assert accounts.github.rate_limit_used - before == 1  # the create alone
