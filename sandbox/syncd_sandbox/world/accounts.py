"""The sandbox's made-up organisation: what its HubSpot, GitHub, Airtable and Jira hold
before the story starts (seed 004's deal stages and community facts, seed 003's lead
statuses, seed 001's client epics). Names and addresses are fictitious."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.jira.fake import FakeJira

PORTAL_ID = 62515
INFRA_REPO = "2i2c-org/infrastructure"  # the repository the shipped mappings name
ENGINEER = "sgibson91"  # the engineer who deploys hubs and closes the New Hub issues
PARTNERSHIPS_LEAD = "jmunroe"  # closes "Request Information" once the community answered
AIRTABLE_BASE = "appSandboxLeads01"
LEADS_TABLE = "Leads"
LEAD_FIELDS = {
    "Community": "singleLineText",
    "community_id": "singleLineText",
    "Status": "singleSelect",
    "Contact email": "email",
    "Monthly fee": "number",
    "Cloud spend": "number",  # the month's cloud bill to pass on (W7), entered by operations
    "Last invoice line": "singleLineText",  # what W7 sent for the row, last month
    "Service start date": "date",
    "Website": "url",
    "Cloud": "singleLineText",
    "Region": "singleLineText",
    "Membership level": "singleLineText",
    "HubSpot deal": "url",
    "Last Modified": "lastModifiedTime",
}
# Seed 003's "Active Hubs" table: one row per hub, cross-referencing the leads table by
# community_id (W1 adds a row when a deployment is requested).
HUBS_TABLE = "Active Hubs"
HUB_FIELDS = {
    "Hub": "singleLineText",
    "community_id": "singleLineText",
    "Status": "singleLineText",
    "Cloud": "singleLineText",
    "Region": "singleLineText",
    "Request Information issue": "url",
    "HubSpot deal": "url",
    "Last Modified": "lastModifiedTime",
}


@dataclass
class Community:
    """One prospective community: its HubSpot deal, company and contacts, its lead row."""

    key: str  # the story's name for it, and its community_id
    deal: dict[str, Any]
    company: dict[str, Any]
    contacts: list[tuple[str, dict[str, Any]]]  # (role, contact properties)
    owner: str  # "ada" or "grace"
    lead_row: dict[str, Any] | None = None  # the Airtable row, if partnerships have one
    deal_id: str = ""
    lead_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _contact(first: str, last: str, domain: str, github: str | None = None) -> dict[str, Any]:
    props = {"firstname": first, "lastname": last, "email": f"{first.lower()}@{domain}"}
    if github:
        props["github_username"] = github
    return props


def communities(start: str, end: str, climate_end: str) -> list[Community]:
    """The five deals of the story. `start`/`end` are service dates (YYYY-MM-DD)."""
    return [
        Community(
            key="pangeo",
            deal={
                "dealname": "Pangeo managed hub",
                "amount": "24000",
                "community_short_name": "Pangeo",
                "community_long_name": "Pangeo Community",
                "community_id": "pangeo",
                "website": "https://pangeo.example",
                "github_org": "pangeo-data",
                "github_repos": "pangeo-data/pangeo-docker-images",
                "logo_url": "https://pangeo.example/logo.png",
                "cloud_provider": "gcp",
                "cloud_region": "us-central1",
                "membership_level": "Partner",
                "start_date": start,
                "end_date": end,
                "num_users": "1500",
            },
            company={"name": "Pangeo", "domain": "pangeo.example"},
            contacts=[
                ("Buyer", _contact("Ryan", "Abernathey", "pangeo.example", "rabernat")),
                ("Community Champion", _contact("Julia", "Signell", "pangeo.example")),
                ("Technical Contact", _contact("Joe", "Hamman", "pangeo.example", "jhamman")),
                (
                    "Authorized PR Submitter",
                    _contact("Tom", "Augspurger", "pangeo.example", "tomaugspurger"),
                ),
            ],
            owner="ada",
            lead_row={
                "Community": "Pangeo Community",
                "community_id": "pangeo",
                "Status": "Active Lead",
                "Contact email": "ryan@pangeo.example",
                "Monthly fee": 2000,
            },
        ),
        Community(
            key="climatelab",
            deal={
                "dealname": "Climate Lab renewal",
                "amount": "9000",
                "community_short_name": "ClimateLab",
                "community_long_name": "Climate Lab",
                "community_id": "climatelab",
                "website": "https://climatelab.example",
                "github_org": "climatelab",
                "logo_url": "https://climatelab.example/logo.svg",
                "cloud_provider": "aws",
                "cloud_region": "us-west-2",
                "membership_level": "Member",
                "start_date": start,
                "end_date": climate_end,
                "num_users": "300",
            },
            # A returning client: its first deal was won in 2024 (no new briefing, W9).
            company={
                "name": "Climate Lab",
                "domain": "climatelab.example",
                "closedate": "2024-05-02T00:00:00Z",
            },
            contacts=[
                ("Buyer", _contact("Maria", "Lopez", "climatelab.example")),
                (
                    "Technical Community Lead",
                    _contact("Sam", "Chen", "climatelab.example", "samchen"),
                ),
            ],
            owner="grace",
            lead_row={
                "Community": "Climate Lab",
                "community_id": "climatelab",
                "Status": "Active Lead",
                "Contact email": "maria@climatelab.example",
                "Monthly fee": 1500,
            },
        ),
        Community(
            key="earthhub",
            deal={
                "dealname": "Open Earth teaching hub",
                "amount": "6000",
                "community_short_name": "OpenEarth",
                "community_long_name": "Open Earth Teaching Network",
                "community_id": "openearth",
                "website": "https://openearth.example",
                "github_org": "openearth-edu",
                "cloud_provider": "gcp",
                "cloud_region": "europe-west1",
                "membership_level": "Member",
                # no end_date yet: the story enters it late, inside the 60-day window (W6)
                "start_date": start,
                "num_users": "800",
            },
            company={"name": "Open Earth Teaching Network", "domain": "openearth.example"},
            contacts=[
                (
                    "Community Representative",
                    _contact("Ines", "Moreau", "openearth.example", "imoreau"),
                )
            ],
            owner="ada",
        ),
        Community(
            key="cryoatlas",
            deal={
                "dealname": "Cryo Atlas hub",
                "community_long_name": "Cryo Atlas",
                "community_id": "cryoatlas",
                "num_users": "120",
            },
            company={"name": "Cryo Atlas", "domain": "cryoatlas.example"},
            contacts=[("Buyer", _contact("Lena", "Berg", "cryoatlas.example"))],
            owner="grace",
            lead_row={
                "Community": "Cryo Atlas",
                "community_id": "cryoatlas",
                "Status": "Active Lead",
            },
        ),
        Community(
            key="oceandata",
            deal={
                "dealname": "Ocean Data Commons hub",
                "community_long_name": "Ocean Data Commons",
                "community_id": "oceandata",
                "num_users": "2000",
            },
            company={"name": "Ocean Data Commons", "domain": "oceandata.example"},
            contacts=[("Buyer", _contact("Kai", "Nakamura", "oceandata.example"))],
            owner="ada",
            lead_row={
                "Community": "Ocean Data Commons",
                "community_id": "oceandata",
                "Status": "Active Lead",
            },
        ),
    ]


# Communities already served: what the end-of-month invoicing list starts from (W7).
ACTIVE_SERVICE_ROWS = [
    {
        "Community": "Ice Sheets Collaborative",
        "community_id": "icesheets",
        "Status": "Active Service",
        "Monthly fee": 1200,
        "Cloud spend": 340.5,
    },
    # A malformed fee (typed with its currency sign): W7 fails this row visibly, not the mail.
    {
        "Community": "Neuro Hub",
        "community_id": "neurohub",
        "Status": "Active Service",
        "Monthly fee": "$900",
    },
    {
        "Community": "Old Astro Hub",
        "community_id": "oldastro",
        "Status": "Inactive Service",
        "Monthly fee": 700,
    },
]

# Deals won long before syncd was installed: history, which going live must not act on
# (no "New Hub" issue, no row, no tier for them).
PAST_WINS = [
    {
        "dealname": "Ice Sheets Collaborative hub",
        "community_short_name": "Ice Sheets",
        "community_long_name": "Ice Sheets Collaborative",
        "community_id": "icesheets",
        "num_users": "800",
    },
    {
        "dealname": "Neuro Hub renewal",
        "community_short_name": "Neuro Hub",
        "community_long_name": "Neuro Hub",
        "community_id": "neurohub",
        "num_users": "400",
    },
]
PAST_STAGES = ["qualified", "proposal", "negotiation", "contractadmin", "closedwon"]

# Client epics in Jira (seed 001): two open, one done; the quarterly review (W8) covers the
# open ones only.
CLIENT_EPICS = [
    ("Client: Ice Sheets Collaborative", "To Do"),
    ("Client: Neuro Hub", "In Progress"),
    ("Client: Old Astro Hub", "Done"),
]


@dataclass
class Seeded:
    owners: dict[str, str]  # "ada" -> HubSpot owner id
    communities: dict[str, Community]
    epics: list[str]  # Jira keys of the client epics, in CLIENT_EPICS order


def seed(
    hubspot: FakeHubSpot,
    github: FakeGitHub,
    airtable: FakeAirtable,
    jira: FakeJira,
    people: list[Community],
) -> Seeded:
    owners = {
        "ada": hubspot.portal.add_owner("Ada", "Lovelace", "ada@example.org"),
        "grace": hubspot.portal.add_owner("Grace", "Hopper", "grace@example.org"),
    }
    for person in people:
        person.deal_id = hubspot.create_deal(
            **person.deal, dealstage="lead", hubspot_owner_id=owners[person.owner]
        )
        hubspot.add_company(person.deal_id, **person.company)
        for role, props in person.contacts:
            hubspot.add_contact(person.deal_id, role, **props)
    for deal in PAST_WINS:
        won = hubspot.create_deal(**deal, dealstage="lead", hubspot_owner_id=owners["ada"])
        hubspot.move_deal(won, *PAST_STAGES, step_seconds=86_400)
    hubspot.portal.take_events()  # the account existed before syncd: no webhooks for it

    github.add_repo(INFRA_REPO)
    github.add_user(ENGINEER)
    github.add_user(PARTNERSHIPS_LEAD)
    github.add_label(INFRA_REPO, "new-hub")

    airtable.create_table(LEADS_TABLE, LEAD_FIELDS)
    airtable.create_table(HUBS_TABLE, HUB_FIELDS)
    for person in people:
        if person.lead_row:
            person.lead_id = airtable.user_create(LEADS_TABLE, person.lead_row)
    for row in ACTIVE_SERVICE_ROWS:
        airtable.user_create(LEADS_TABLE, row)

    owner_account = list(jira.users)[1]  # Ada in the fake Jira
    epics = []
    for summary, status in CLIENT_EPICS:
        epic = jira.user_create(
            "CLI",
            summary,
            issuetype="Epic",
            labels=["client-epic"],
            status=status,
            assignee=owner_account,
        )
        epics.append(epic.key)
    seed_new_flows(github, jira)
    return Seeded(owners, {p.key: p for p in people}, epics)


# --- W14-W18 (mappings/waiting-leads.yaml ... new-client-tasks.yaml) ----------------------
# Where W16 tracks engagements on GitHub, and the administrative specialist W18 assigns
# onboarding to (a Jira user); the lead fields W14 reads (designed: the seed names none).
ENGAGEMENTS_REPO = "2i2c-org/engagements"
ADMIN_SPECIALIST = ("712020:cccc-3333", "Mary Jackson", "admin@example.org")
LEAD_FIELDS.update({"Follow-up date": "date", "Waiting on": "singleLineText"})


def seed_new_flows(github: FakeGitHub, jira: FakeJira) -> None:
    from syncd_sandbox.jira.fake_model import FakeUser

    github.add_repo(ENGAGEMENTS_REPO)
    account_id, name, email = ADMIN_SPECIALIST
    jira.users[account_id] = FakeUser(account_id, name, email)
