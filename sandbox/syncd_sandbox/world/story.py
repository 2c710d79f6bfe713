"""The scripted sales story the demo plays and the end-to-end test replays.

Nine days in the life of the sandbox organisation, one engine cycle per step. Some changes
reach syncd as signed webhooks (POSTed to its webhook endpoint exactly as HubSpot, GitHub or
Airtable would); others are left to polling, as when a webhook is lost. `expected()` is
what the fakes must hold afterwards: each effect exactly once, nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from connectors.airtable import AirtableConnector
from syncd.clock import FakeClock
from syncd.engine import Engine
from syncd.store.cursors import forget_all_cursors
from syncd_sandbox.world.accounts import (
    ENGINEER,
    INFRA_REPO,
    LEADS_TABLE,
    PARTNERSHIPS_LEAD,
    PAST_WINS,
)
from syncd_sandbox.world.effects import ActionFeed, Effects, describe
from syncd_sandbox.world.fakes import GITHUB_WEBHOOK_SECRET, Sandbox
from syncd_sandbox.world.runtime import WebhookServer

# An action waiting longer than this for its rate budget is left to a later cycle.
BUDGET_WAIT_CAP = 60.0

# A Tuesday; the story ends on 1 April, first day of a quarter, after the end of March.
STORY_START = datetime(2026, 3, 24, 8, 0, tzinfo=UTC)
# How long the accounts existed before syncd was installed (their history).
ACCOUNT_HISTORY = timedelta(days=90)
STAGES = {
    "Lead": "lead",
    "Qualified": "qualified",
    "Proposal": "proposal",
    "Negotiation": "negotiation",
    "Contract Admin": "contractadmin",
    "Closed Won": "closedwon",
    "Closed Lost": "closedlost",
}
Say = Callable[[str], None]


@dataclass
class Delivery:
    connector: str
    headers: dict[str, str]
    body: bytes


class Story:
    """Drives the fakes as people would and runs one engine cycle after each step."""

    def __init__(
        self, box: Sandbox, engine: Engine, hooks: WebhookServer, say: Say = lambda line: None
    ) -> None:
        self.box, self.engine, self.hooks, self.say = box, engine, hooks, say
        self.clock: FakeClock = box.clock
        self.seeded = box.seeded
        self.feed = ActionFeed(engine.store)
        self.deliveries: list[Delivery] = []
        self.airtable_hook = ""
        self._pinged_payloads = 0

    # -- wiring webhooks -----------------------------------------------------------------

    def connect_webhooks(self) -> None:
        """What an admin does once: GitHub's repository webhook, Airtable's webhook.
        HubSpot's app webhook needs no set-up here: the story POSTs its batches."""
        self.box.github.add_hook(
            INFRA_REPO, self.hooks.webhook_url("github"), GITHUB_WEBHOOK_SECRET, ["issues"]
        )
        airtable = self.engine.connectors["airtable"]
        assert isinstance(airtable, AirtableConnector)
        created = airtable.ensure_webhooks(self.hooks.webhook_url("airtable"))
        self.airtable_hook = created["lead"]

    def post(self, connector: str, headers: dict[str, str], body: bytes) -> int:
        answer = requests.post(
            self.hooks.webhook_url(connector), data=body, headers=headers, timeout=10
        )
        self.deliveries.append(Delivery(connector, headers, body))
        return answer.status_code

    def forward_webhooks(self) -> None:
        """Send what HubSpot and Airtable would have sent since the last call (live mode)."""
        if self.box.hubspot.portal.events:
            self._hubspot_batch(webhook=True)
        hook = self.box.airtable.webhooks.hooks.get(self.airtable_hook)
        if hook is not None and len(hook.payloads) > self._pinged_payloads:
            self._pinged_payloads = len(hook.payloads)
            self.post("airtable", *self.box.airtable.signed_ping(self.airtable_hook))

    # -- what people do ------------------------------------------------------------------

    def deal(self, key: str) -> str:
        return self.seeded.communities[key].deal_id

    def move(self, key: str, *labels: str, webhook: bool) -> None:
        community = self.seeded.communities[key]
        path = " -> ".join(labels)
        self.box.hubspot.move_deal(community.deal_id, *(STAGES[s] for s in labels), step_seconds=1)
        how = "signed webhook" if webhook else "no webhook: polling finds it"
        self.say(f"  HubSpot  {community.deal['dealname']}: {path}  ({how})")
        self._hubspot_batch(webhook)

    def _hubspot_batch(self, webhook: bool) -> None:
        if not webhook:
            self.box.hubspot.portal.take_events()  # a lost webhook
            return
        url = self.hooks.webhook_url("hubspot")
        headers, body = self.box.hubspot.webhook(url)
        status = self.post("hubspot", headers, body)
        if status >= 300:
            raise RuntimeError(f"syncd refused the HubSpot webhook: {status}")

    def set_deal(self, key: str, *, webhook: bool, **properties: str) -> None:
        community = self.seeded.communities[key]
        self.box.hubspot.update_deal(community.deal_id, **properties)
        changed = ", ".join(f"{k} = {v}" for k, v in properties.items())
        self.say(
            f"  HubSpot  {community.deal['dealname']}: {changed}  "
            f"({'signed webhook' if webhook else 'no webhook: polling finds it'})"
        )
        self._hubspot_batch(webhook)

    def lead_status(self, key: str, status: str, *, webhook: bool) -> None:
        community = self.seeded.communities[key]
        self.box.airtable.user_update(LEADS_TABLE, community.lead_id, {"Status": status})
        how = "Airtable ping" if webhook else "no webhook: polling finds it"
        name = (community.lead_row or {}).get("Community", key)
        self.say(f"  Airtable {name}: Status -> {status}  ({how})")
        if webhook:
            headers, body = self.box.airtable.signed_ping(self.airtable_hook)
            status_code = self.post("airtable", headers, body)
            if status_code >= 300:
                raise RuntimeError(f"syncd refused the Airtable ping: {status_code}")

    def close_new_hub_issue(
        self, key: str, step: str = "Request deployment", user: str = ENGINEER
    ) -> None:
        name = self.seeded.communities[key].deal["community_long_name"]
        for issue in self.box.github.issues(INFRA_REPO):
            if issue.title == f"New Hub - {step}: {name}":
                self.say(
                    f'  GitHub   {user} closes #{issue.number} "{issue.title}" '
                    "as completed  (GitHub delivers the webhook)"
                )
                self.box.github.close_issue(INFRA_REPO, issue.number, user=user)
                return
        raise RuntimeError(f"no New Hub - {step} issue for {name}")

    def note_waiting(self, key: str, follow_up: str, waiting_on: str) -> None:
        """Partnerships park a lead in Waiting with the date to follow up (W14)."""
        community = self.seeded.communities[key]
        self.box.airtable.user_update(
            LEADS_TABLE,
            community.lead_id,
            {"Status": "Waiting", "Follow-up date": follow_up, "Waiting on": waiting_on},
        )
        self.say(f"  Airtable {key}: Status -> Waiting, follow up on {follow_up}  (Airtable ping)")
        self.post("airtable", *self.box.airtable.signed_ping(self.airtable_hook))

    # -- time and cycles -----------------------------------------------------------------

    def day(self, number: int, note: str = "", hour: int = 8) -> None:
        moment = STORY_START + timedelta(days=number, hours=hour - STORY_START.hour)
        if moment > self.clock.now():
            self.clock.set(moment)
        self.say("")
        self.say(f"{moment:%a %d %b %Y %H:%M} UTC  (day {number}){'  ' + note if note else ''}")

    def cycle(self) -> list[dict[str, Any]]:
        """One engine cycle (webhook inbox, polls, due schedules, actions); says each effect."""
        self.engine.run_once()
        self.wait_out_rate_budgets()
        rows = self.feed.new()
        for row in rows:
            mark = "->" if row["status"] == "done" else "!!"
            self.say(f"    {mark} [{row['rule_id']}] {describe(row)}")
        return rows

    def wait_out_rate_budgets(self) -> None:
        """Let the story's clock run while actions wait for an API's rate budget (a burst of
        Airtable writes spends the base's 5 requests a second): the daemon's executor would
        sleep until their turn, so the story moves time on by that much and drains again."""
        executor = self.engine.executor
        for _ in range(1000):  # bounded: each round ends at least one wait
            wait = executor.idle_seconds(BUDGET_WAIT_CAP)
            if wait >= BUDGET_WAIT_CAP:
                return
            self.clock.advance(wait + 0.001)
            executor.drain(limit=self.engine.config.executor.batch_size)

    # -- the story -----------------------------------------------------------------------

    def go_live(self) -> None:
        """syncd's first cycle: it reads the accounts; their history fires nothing."""
        report = self.engine.run_once()
        counts = {
            stream: result.observed
            for stream, result in report.polled.items()
            if not isinstance(result, Exception)
        }
        actions = self.feed.new()
        read = ", ".join(f"{n} {stream}" for stream, n in sorted(counts.items()) if n)
        self.say(
            f"  went live: {read} baselined (among them {len(PAST_WINS)} deals won "
            f"months ago), {len(actions)} actions"
        )
        for row in actions:
            self.say(f"    !! [{row['rule_id']}] {describe(row)}")

    def play(self) -> None:
        self.connect_webhooks()
        self.day(0, "syncd is installed: it goes live and reads the accounts")
        self.go_live()
        self.day(0, "the sales team's morning", hour=10)
        self.move("pangeo", "Qualified", webhook=True)
        self.move("cryoatlas", "Qualified", webhook=True)
        self.move("oceandata", "Qualified", webhook=False)
        self.move(
            "climatelab",
            "Qualified",
            "Proposal",
            "Negotiation",
            "Contract Admin",
            "Closed Won",
            webhook=False,
        )
        self.cycle()

        self.day(1)
        self.move("pangeo", "Proposal", webhook=True)
        self.move("oceandata", "Proposal", webhook=False)
        self.lead_status("climatelab", "Needs Admin", webhook=False)
        self.cycle()

        self.day(2, "Climate Lab's agreement now ends in 59 days")
        self.move("pangeo", "Negotiation", webhook=True)
        self.move("oceandata", "Closed Lost", webhook=True)
        self.note_waiting("cryoatlas", "2026-03-31", "their grant decision")
        self.cycle()

        self.day(3)
        self.move("pangeo", "Contract Admin", webhook=True)
        self.lead_status("pangeo", "Needs Admin", webhook=True)
        self.cycle()

        self.day(4)
        self.move("pangeo", "Closed Won", webhook=True)
        self.move(
            "earthhub",
            "Qualified",
            "Proposal",
            "Negotiation",
            "Contract Admin",
            "Closed Won",
            webhook=True,
        )
        self.cycle()

        self.day(5, "Pangeo's representatives answered the Request Information issue")
        self.close_new_hub_issue("pangeo", "Request Information", user=PARTNERSHIPS_LEAD)
        self.cycle()
        self.day(5, "later that morning: the engineer has deployed Pangeo's hub")
        self.close_new_hub_issue("pangeo")
        self.cycle()
        self.day(
            6,
            "the service start date (29 Mar, 09:00) has passed; Open Earth's end "
            "date is entered, already inside the 60-day window",
        )
        self.set_deal(
            "earthhub", end_date=(STORY_START + timedelta(days=52)).date().isoformat(), webhook=True
        )
        self.cycle()
        self.day(7, "past 09:00 in Los Angeles: Cryo Atlas has been Qualified a week", hour=17)
        self.cycle()
        self.day(8, "March has ended (17:00 Los Angeles); a new quarter began (09:00 Berlin)")
        self.cycle()

    def replay(self) -> None:
        """Everything again: every webhook delivery re-sent, every stream polled from the
        start, schedules ticked. Must change nothing."""
        self.say("")
        self.say("Replay: every webhook re-delivered, every stream re-polled from scratch")
        for delivery in self.deliveries:
            requests.post(
                self.hooks.webhook_url(delivery.connector),
                data=delivery.body,
                headers=delivery.headers,
                timeout=10,
            )
        for hook in self.box.github.repos[INFRA_REPO].hooks.values():
            for sent in list(hook.deliveries):
                requests.post(
                    self.hooks.webhook_url("github"),
                    data=sent.body,
                    headers=sent.headers,
                    timeout=10,
                )
        with self.engine.store.tx() as conn:
            forget_all_cursors(conn)
        self.cycle()


def expected(box: Sandbox) -> Effects:
    """What the fakes hold after `Story.play()`: each effect once, nothing else."""
    # New clients get the two-step New Hub; Climate Lab's renewal gets no second New Hub.
    won = {"pangeo": "Pangeo Community", "earthhub": "Open Earth Teaching Network"}
    deals = {
        c.deal["dealname"]: {"maintenance_tier": None, "delivered": None}
        for c in box.seeded.communities.values()
    }
    for past in PAST_WINS:  # won before go-live: history, untouched
        deals[past["dealname"]] = {"maintenance_tier": None, "delivered": None}
    deals["Pangeo managed hub"] = {"maintenance_tier": "Tier 2 (11 h/month)", "delivered": "true"}
    # 300 users, but on AWS: a dedicated cluster, so tier 2 (seed 000)
    deals["Climate Lab renewal"]["maintenance_tier"] = "Tier 2 (11 h/month)"
    deals["Open Earth teaching hub"]["maintenance_tier"] = "Tier 1 (7 h/month)"
    partnerships = "partnerships@example.org"
    emails: Counter[tuple[str, str, str]] = Counter()
    for name in (
        "Climate Lab renewal",
        "Pangeo managed hub",
        "Ocean Data Commons hub",
        "Open Earth teaching hub",
    ):
        emails[
            ("delivery@example.org", partnerships, f"Capacity check: {name} is at Proposal")
        ] += 1
    for name in ("Climate Lab renewal", "Pangeo managed hub", "Open Earth teaching hub"):
        emails[("contracts@fiscal-sponsor.example.org", partnerships, f"Quote sent: {name}")] += 1
        emails[("operations@example.org", partnerships, f"Please collect signatures: {name}")] += 1
    for name in ("Climate Lab", "Pangeo Community"):
        emails[("operations@example.org", partnerships, f"New service confirmed: {name}")] += 1
    emails[(partnerships, "", "Agreement expiring in 60 days: Climate Lab renewal")] += 1
    emails[(partnerships, "", "Agreement expiring in 60 days: Open Earth teaching hub")] += 1
    emails[
        ("grace@example.org", "", "Follow up: Cryo Atlas hub has been Qualified for a week")
    ] += 1
    emails[("operations@example.org", partnerships, "Invoices for March 2026: 4 communities")] += 1
    # Neuro Hub's fee is "$900": its invoice line fails alone, and the alert inbox hears.
    emails[(partnerships, "", "[syncd] rule w7-invoice-line failed: render error")] += 1
    effects = Effects(
        issues=Counter(
            [
                *(f"New Hub - Request Information: {n}" for n in won.values()),
                "New Hub - Request deployment: Pangeo Community",
                "Hub renewal: Climate Lab",
            ]
        ),
        closed_issues={
            "New Hub - Request Information: Pangeo Community",
            "New Hub - Request deployment: Pangeo Community",
        },
        hubs={"pangeo": "Deployment requested"},
        emails=emails,
        lead_status={
            "pangeo": "Active Service",
            "climatelab": "Active Service",
            "openearth": "",
            "cryoatlas": "Active Lead",
            "oceandata": "Active Lead",
            "icesheets": "Active Service",
            "neurohub": "Active Service",
            "oldastro": "Inactive Service",
        },
        lead_rows=8,
        deals=deals,
        tickets=Counter(
            {
                "Client Briefing: Pangeo": 1,
                "Client Briefing: Open Earth Teaching Network": 1,
                "Client strategy review 2026-Q2: Client: Ice Sheets Collaborative": 1,
                "Client strategy review 2026-Q2: Client: Neuro Hub": 1,
            }
        ),
    )
    return new_flow_effects(effects)


def new_flow_effects(effects: Effects) -> Effects:
    """W14-W18 in the story: Cryo Atlas waits (W14); the three deals signed go through
    Contract Admin (W17) into Closed Won (W16); two of them are new clients (W18)."""
    partnerships = "partnerships@example.org"
    sponsor = "contracts@fiscal-sponsor.example.org, finance@fiscal-sponsor.example.org"
    for name in ("Climate Lab renewal", "Pangeo managed hub", "Open Earth teaching hub"):
        effects.emails[(sponsor, partnerships, f"Contract to send: {name}")] += 1
    # Every signed deal, a renewal too (one engagement per deal); not tied to W1's list.
    for community in ("Climate Lab", "Pangeo Community", "Open Earth Teaching Network"):
        effects.emails[
            ("delivery@example.org", partnerships, f"Delivery request: {community}")
        ] += 1
        for title in (
            f"Engagement: {community}",
            f"Project: {community} hub deployment",
            f"Deliverables: {community}",
        ):
            effects.engagement_issues[title] += 1
    for client in ("Pangeo", "Open Earth Teaching Network"):
        effects.tickets[f"Kickoff meeting: {client}"] += 1
        effects.tickets[f"Onboard client: {client}"] += 1
    effects.emails[(partnerships, "", "Follow up with Cryo Atlas: waiting date reached")] += 1
    effects.lead_status["cryoatlas"] = "Waiting"
    return effects
