"""What syncd did, in words: one line per performed action (for the demo), and what the
fakes hold (for `syncd demo --once` and the end-to-end test)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from syncd.store.actions import finished_actions_after, list_actions
from syncd.store.db import Store
from syncd_sandbox.world.accounts import ENGAGEMENTS_REPO, HUBS_TABLE, INFRA_REPO, LEADS_TABLE
from syncd_sandbox.world.fakes import Sandbox


def describe(row: dict[str, Any]) -> str:
    """One line for a performed action: what it left where."""
    p, done = row["params"], row["external_id"] or ""
    kind = f"{row['connector']}.{row['action']}"
    if row["status"] == "dead":
        return f"{kind} FAILED: {row['last_error']}"
    if kind == "email.send":
        to = p["to"] if isinstance(p["to"], list) else [p["to"]]
        return f'email sent to {", ".join(to)}: "{p["subject"]}"'
    if kind == "github.create_issue":
        return f'GitHub issue {done} opened: "{p["title"]}"'
    if kind == "airtable.upsert":
        keys = ", ".join(f"{k}={p['fields'][k]}" for k in p["merge_on"])
        rest = {k: v for k, v in p["fields"].items() if k not in p["merge_on"] and v}
        return f"Airtable row upserted ({keys}): {_short(rest)}"
    if kind == "airtable.update":
        return f"Airtable row {p['record_id']} updated: {_short(p['fields'])}"
    if kind == "jira.create_issue":
        return f'Jira ticket {done} created: "{p["summary"]}"'
    if kind == "hubspot.update_deal":
        return f"HubSpot deal {p['deal_id']} updated: {_short(p['properties'])}"
    return f"{kind} done ({done})"


def _short(values: dict[str, Any], limit: int = 90) -> str:
    text = ", ".join(f"{k}={v}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ActionFeed:
    """The actions finished since the last look, oldest first (read from the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seen = 0

    def new(self) -> list[dict[str, Any]]:
        rows = [asdict(r) for r in finished_actions_after(self.store, self.seen)]
        if rows:
            self.seen = rows[-1]["id"]
        return rows

    def all(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in list_actions(self.store)]


@dataclass
class Effects:
    """Everything syncd could have left at the fakes, in comparable form."""

    issues: Counter[str] = field(default_factory=Counter)  # titles in the infra repo
    closed_issues: set[str] = field(default_factory=set)
    emails: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (to, cc, subject)
    lead_status: dict[str, str] = field(default_factory=dict)  # community_id -> Status
    lead_rows: int = 0
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> tier, delivered
    tickets: Counter[str] = field(default_factory=Counter)  # Jira summaries syncd created
    engagement_issues: Counter[str] = field(default_factory=Counter)  # W16, on GitHub
    hubs: dict[str, str] = field(default_factory=dict)  # Active Hubs: community_id -> Status

    def differences(self, expected: Effects) -> list[str]:
        out = []
        for name in (
            "issues",
            "closed_issues",
            "emails",
            "lead_status",
            "lead_rows",
            "deals",
            "tickets",
            "engagement_issues",
            "hubs",
        ):
            got, want = getattr(self, name), getattr(expected, name)
            if got == want:
                continue
            if isinstance(got, Counter):
                missing, extra = want - got, got - want
                out.append(f"{name}: missing {dict(missing)}; unexpected {dict(extra)}")
            else:
                out.append(f"{name}: expected {want!r}, found {got!r}")
        return out


def observe(box: Sandbox) -> Effects:
    """Read the effects back from the fakes (not from syncd's own records)."""
    seen = Effects()
    for issue in box.github.issues(INFRA_REPO):
        seen.issues[issue.title] += 1
        if issue.state == "closed":
            seen.closed_issues.add(issue.title)
    for received in box.smtp.messages:
        msg = received.message
        seen.emails[(str(msg["To"]), str(msg["Cc"] or ""), str(msg["Subject"]))] += 1
    rows = box.airtable.records(LEADS_TABLE)
    seen.lead_rows = len(rows)
    for row in rows:
        fields = row["fields"]
        seen.lead_status[fields.get("community_id", row["id"])] = fields.get("Status", "")
    for row in box.airtable.records(HUBS_TABLE):
        seen.hubs[row["fields"].get("community_id", row["id"])] = row["fields"].get("Status", "")
    for deal in box.hubspot.portal.live("deals"):
        props = deal.properties
        seen.deals[props["dealname"] or deal.id] = {
            "maintenance_tier": props.get("maintenance_tier"),
            "delivered": props.get("delivered"),
        }
    for issue in box.github.issues(ENGAGEMENTS_REPO):
        seen.engagement_issues[issue.title] += 1
    bot = box.jira.bot.account_id
    for issue in box.jira.issues.values():
        if issue.reporter == bot and issue.issuetype != "Epic":
            seen.tickets[issue.summary] += 1
    return seen
