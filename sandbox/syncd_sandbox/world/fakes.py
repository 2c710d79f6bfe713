"""The sandbox: the connectors' own local fakes of HubSpot, GitHub, Airtable, Jira and an SMTP
server, on free 127.0.0.1 ports, on one shared clock, seeded with the sandbox account.

    with Sandbox(clock) as box:
        settings = box.connector_settings()   # [hubspot], [github], ... pointing at the fakes

Credentials are dummy values the fakes accept; nothing leaves the machine.
"""

from __future__ import annotations

from datetime import date, timedelta

from connectors.airtable import AirtableSettings
from connectors.github import GitHubSettings
from connectors.hubspot import HubSpotSettings
from connectors.jira import JiraSettings
from syncd.clock import FakeClock
from syncd.connector import ConnectorSettings
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.email.fake import FakeSmtpServer
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.jira.fake import FakeJira
from syncd_sandbox.world.accounts import (
    AIRTABLE_BASE,
    HUBS_TABLE,
    INFRA_REPO,
    LEADS_TABLE,
    PORTAL_ID,
    Seeded,
    communities,
    seed,
)

# Dummy credentials: the fakes check them, as the real APIs would.
HUBSPOT_TOKEN = "sandbox-hubspot-token"
HUBSPOT_APP_SECRET = "sandbox-hubspot-app-secret"
GITHUB_TOKEN = "sandbox-github-token"
GITHUB_WEBHOOK_SECRET = "sandbox-github-webhook-secret"
AIRTABLE_TOKEN = "patSandbox.token0000"
JIRA_EMAIL = "syncd@example.org"
JIRA_TOKEN = "sandbox-jira-token"


class Sandbox:
    def __init__(self, clock: FakeClock, today: date | None = None) -> None:
        self.clock = clock
        # The day the service dates are counted from (default: the clock's day at start).
        self.today = today
        self.hubspot = FakeHubSpot(
            clock=clock,
            token=HUBSPOT_TOKEN,
            app_secret=HUBSPOT_APP_SECRET,
            portal_id=PORTAL_ID,
            general_limit=1000,
            search_limit=100,
        )
        self.github = FakeGitHub(clock=clock, token=GITHUB_TOKEN, login="syncd-bot")
        self.airtable = FakeAirtable(token=AIRTABLE_TOKEN, base_id=AIRTABLE_BASE, clock=clock)
        self.jira = FakeJira(clock=clock, email=JIRA_EMAIL, api_token=JIRA_TOKEN)
        self.smtp = FakeSmtpServer()
        self._servers: list[FakeServer] = []
        self._seeded: Seeded | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        try:
            self._servers = [
                self.hubspot.serve().start(),
                FakeServer(self.airtable.app).start(),
                FakeServer(self.jira.app).start(),
            ]
            self.github.start()
            self.smtp.start()
        except Exception:
            self.stop()
            raise
        today = self.today or self.clock.now().date()
        self._seeded = seed(
            self.hubspot,
            self.github,
            self.airtable,
            self.jira,
            communities(
                start=(today + timedelta(days=5)).isoformat(),
                end=(today + timedelta(days=370)).isoformat(),
                # 61 days out: its 60-days-before mark comes during the story (W6)
                climate_end=(today + timedelta(days=61)).isoformat(),
            ),
        )
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers = []
        self.github.stop()
        self.smtp.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what is where ------------------------------------------------------------------

    @property
    def seeded(self) -> Seeded:
        """The seeded account (deal ids, lead rows, epics); set by `start()`."""
        if self._seeded is None:
            raise RuntimeError("the sandbox is not started")
        return self._seeded

    @property
    def hubspot_url(self) -> str:
        return self._servers[0].url

    @property
    def airtable_url(self) -> str:
        return self._servers[1].url

    @property
    def jira_url(self) -> str:
        return self._servers[2].url

    def urls(self) -> dict[str, str]:
        return {
            "hubspot": self.hubspot_url,
            "github": self.github.base_url,
            "airtable": self.airtable_url,
            "jira": self.jira_url,
            "smtp": f"smtp://{self.smtp.host}:{self.smtp.port}",
        }

    def connector_settings(self) -> dict[str, ConnectorSettings]:
        """One settings table per connector, pointing at the fakes (what [name] holds)."""
        return {
            "hubspot": HubSpotSettings(
                base_url=self.hubspot_url,
                access_token=HUBSPOT_TOKEN,
                app_secret=HUBSPOT_APP_SECRET,
                portal_id=PORTAL_ID,
                timeout_seconds=5,
                # generous client-side limits: on the story's clock a wait would move time
                requests_per_10s=1000,
                search_requests_per_second=100,
                company_properties=["name", "domain", "website", "city", "country", "closedate"],
            ),
            "github": GitHubSettings(
                base_url=self.github.base_url,
                token=GITHUB_TOKEN,
                webhook_secret=GITHUB_WEBHOOK_SECRET,
                repositories=[INFRA_REPO],
                timeout_seconds=5,
            ),
            "airtable": AirtableSettings(
                base_url=self.airtable_url,
                token=AIRTABLE_TOKEN,
                base_id=AIRTABLE_BASE,
                tables={"lead": LEADS_TABLE, "hub": HUBS_TABLE},
                timeout_seconds=5,
            ),
            "jira": JiraSettings(
                base_url=self.jira_url,
                email=JIRA_EMAIL,
                api_token=JIRA_TOKEN,
                projects=["CLI"],
                timeout_seconds=5,
                rate_limit_per_second=1000,
            ),
            "email": self.smtp.settings(from_address="syncd <syncd@example.org>"),
        }
