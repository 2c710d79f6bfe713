"""The fake HubSpot's portal: CRM records with property history, associations, pipelines.

Kept apart from the HTTP layer (`fake.py`) so tests and the demo can drive it "as a user
would" (`move_deal`, `update_deal`) and inspect it (`notes_of`) without going through HTTP.
Every write stamps `hs_lastmodifieddate` from the injected clock and appends to the property's
history, as HubSpot does; property changes are queued as webhook events for `fake.py`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.hubspot.timefmt import iso
from syncd.clock import Clock, SystemClock, to_ms

DEFAULT_STAGES = [
    ("lead", "Lead"),
    ("qualified", "Qualified"),
    ("proposal", "Proposal"),
    ("negotiation", "Negotiation"),
    ("contractadmin", "Contract Admin"),
    ("closedwon", "Closed Won"),
    ("closedlost", "Closed Lost"),
]

# The seed's community facts (004) as custom deal properties, plus HubSpot's own ones.
DEAL_PROPERTIES = [
    ("dealname", "Deal Name", "string"),
    ("dealstage", "Deal Stage", "enumeration"),
    ("pipeline", "Pipeline", "enumeration"),
    ("amount", "Amount", "number"),
    ("closedate", "Close Date", "datetime"),
    ("createdate", "Create Date", "datetime"),
    ("hs_lastmodifieddate", "Last Modified Date", "datetime"),
    ("hs_object_id", "Record ID", "number"),
    ("hubspot_owner_id", "Deal owner", "enumeration"),
    ("community_short_name", "Community Short Name", "string"),
    ("community_long_name", "Community Long Name", "string"),
    ("community_id", "community_id", "string"),
    ("website", "Community Website", "string"),
    ("github_org", "GitHub organization", "string"),
    ("github_repos", "Representative repositories", "string"),
    ("logo_url", "Logo URL", "string"),
    ("cloud_provider", "Cloud provider", "string"),
    ("cloud_region", "Cloud region", "string"),
    ("membership_level", "Membership level", "string"),
    ("start_date", "Start date", "date"),
    ("end_date", "End date", "date"),
    ("num_users", "Number of users", "number"),
    ("maintenance_tier", "Maintenance tier", "string"),
    # seed 000's tier factors (W12), and the tier business development decided
    ("deployment_type", "Deployment type", "string"),
    ("num_instances", "Number of instances", "number"),
    ("maintenance_tier_override", "Maintenance tier override", "string"),
    ("delivered", "Delivered", "bool"),
    ("renewed", "Renewed", "bool"),  # W15: ticked on the old deal when a renewal is signed
]

# HubSpot-defined association type ids (v4), the ones this fake needs.
ASSOC_TYPES = {
    ("deals", "companies"): (341, 5),  # (unlabeled, primary)
    ("deals", "contacts"): (3, None),
    ("deals", "notes"): (213, None),
    ("notes", "deals"): (214, None),
}
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "notes": "0-46"}
TYPE_ALIASES = {
    "deal": "deals",
    "deals": "deals",
    "0-3": "deals",
    "company": "companies",
    "companies": "companies",
    "0-2": "companies",
    "contact": "contacts",
    "contacts": "contacts",
    "0-1": "contacts",
    "note": "notes",
    "notes": "notes",
    "0-46": "notes",
}


@dataclass
class Record:
    id: str
    object_type: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    # property -> [(ms, value, sourceType)] oldest first
    history: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    archived: bool = False


@dataclass
class AssocLink:
    category: str
    type_id: int
    label: str | None


class Portal:
    """One HubSpot account's CRM data. Thread-safe: the HTTP server runs handlers in threads."""

    def __init__(self, clock: Clock | None = None, portal_id: int = 62515) -> None:
        self.clock = clock or SystemClock()
        self.portal_id = portal_id
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {t: {} for t in OBJECT_TYPE_IDS}
        # (from_type, from_id, to_type) -> {to_id: [links]}
        self.links: dict[tuple[str, str, str], dict[str, list[AssocLink]]] = {}
        self.owners: dict[str, dict[str, Any]] = {}
        self.pipelines: list[dict[str, Any]] = [self._default_pipeline()]
        self.events: list[dict[str, Any]] = []  # webhook events not yet delivered
        self._ids = itertools.count(1001)
        self._event_ids = itertools.count(1)

    # -- time and ids ------------------------------------------------------------------

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _default_pipeline(self) -> dict[str, Any]:
        stamp = iso(to_ms(datetime(2024, 1, 1, tzinfo=UTC)))
        stages = [
            {
                "id": sid,
                "label": label,
                "displayOrder": i,
                "archived": False,
                "createdAt": stamp,
                "updatedAt": stamp,
                "metadata": {
                    "isClosed": str(sid.startswith("closed")).lower(),
                    "probability": "1.0"
                    if sid == "closedwon"
                    else "0.0"
                    if sid == "closedlost"
                    else f"{0.1 * (i + 1):.1f}",
                },
            }
            for i, (sid, label) in enumerate(DEFAULT_STAGES)
        ]
        return {
            "id": "default",
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "archived": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "stages": stages,
        }

    # -- records -----------------------------------------------------------------------

    def create(
        self,
        object_type: str,
        properties: dict[str, Any],
        *,
        source: str = "CRM_UI",
        record_id: str | None = None,
    ) -> Record:
        with self.lock:
            now = self.now_ms()
            rid = record_id or self._next_id()
            values = {k: _as_str(v) for k, v in properties.items()}
            if object_type == "deals":
                values.setdefault("pipeline", "default")
                values.setdefault("dealstage", "lead")
            values.update(hs_object_id=rid, createdate=iso(now), hs_lastmodifieddate=iso(now))
            record = Record(rid, object_type, values, now, now)
            for name, value in values.items():
                if value is not None:
                    record.history[name] = [(now, value, source)]
            self.records[object_type][rid] = record
            self._event(object_type, "creation", rid, now)
            return record

    def update(
        self, object_type: str, rid: str, properties: dict[str, Any], *, source: str = "CRM_UI"
    ) -> Record:
        """Change properties; like HubSpot, an unchanged value leaves no history entry."""
        with self.lock:
            record = self.get(object_type, rid)
            if record is None:
                raise KeyError(rid)
            now = max(self.now_ms(), record.updated_ms)
            changed = False
            for name, raw in properties.items():
                value = _as_str(raw)
                if record.properties.get(name) == value:
                    continue
                changed = True
                record.properties[name] = value
                record.history.setdefault(name, []).append((now, value or "", source))
                self._event(object_type, "propertyChange", rid, now, name, value)
            if changed:
                record.updated_ms = now
                record.properties["hs_lastmodifieddate"] = iso(now)
            return record

    def archive(self, object_type: str, rid: str) -> None:
        with self.lock:
            record = self.get(object_type, rid)
            if record is not None:
                record.archived = True
                self._event(object_type, "deletion", rid, self.now_ms())

    def get(self, object_type: str, rid: str) -> Record | None:
        record = self.records[object_type].get(rid)
        return None if record is None or record.archived else record

    def live(self, object_type: str) -> list[Record]:
        with self.lock:
            return [r for r in self.records[object_type].values() if not r.archived]

    # -- associations ------------------------------------------------------------------

    def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        label: str | None = None,
        *,
        primary: bool = False,
        type_id: int | None = None,
    ) -> None:
        """Link both ways; `label` makes a USER_DEFINED label (a contact's role on a deal)."""
        with self.lock:
            plain, primary_id = ASSOC_TYPES.get((from_type, to_type), (1, None))
            links = [AssocLink("HUBSPOT_DEFINED", type_id or plain, None)]
            if primary and primary_id is not None:
                links.append(AssocLink("HUBSPOT_DEFINED", primary_id, "Primary"))
            if label:
                links.append(AssocLink("USER_DEFINED", 100 + len(label), label))
            self._add_links(from_type, from_id, to_type, to_id, links)
            back, _ = ASSOC_TYPES.get((to_type, from_type), (1, None))
            self._add_links(
                to_type,
                to_id,
                from_type,
                from_id,
                [
                    AssocLink(
                        link.category, back if link.label is None else link.type_id, link.label
                    )
                    for link in links
                ],
            )

    def _add_links(
        self, from_type: str, from_id: str, to_type: str, to_id: str, links: list[AssocLink]
    ) -> None:
        existing = self.links.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, [])
        for link in links:
            if all(e.type_id != link.type_id for e in existing):
                existing.append(link)

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[AssocLink]]:
        with self.lock:
            found = self.links.get((from_type, from_id, to_type), {})
            return {k: list(v) for k, v in found.items() if self.get(to_type, k) is not None}

    # -- owners and webhook events -----------------------------------------------------

    def add_owner(self, first: str, last: str, email: str) -> str:
        with self.lock:
            oid = str(next(self._ids))
            self.owners[oid] = {
                "id": oid,
                "firstName": first,
                "lastName": last,
                "email": email,
                "type": "PERSON",
                "userId": int(oid),
                "archived": False,
                "createdAt": iso(self.now_ms()),
                "updatedAt": iso(self.now_ms()),
            }
            return oid

    def _event(
        self,
        object_type: str,
        kind: str,
        rid: str,
        ms: int,
        name: str | None = None,
        value: str | None = None,
    ) -> None:
        if object_type != "deals" or name in {"hs_lastmodifieddate"}:
            return
        event: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "subscriptionId": 4000 + len(kind),
            "portalId": self.portal_id,
            "appId": 54321,
            "occurredAt": ms,
            "subscriptionType": f"deal.{kind}",
            "attemptNumber": 0,
            "objectId": int(rid),
            "changeSource": "CRM_UI",
        }
        if name is not None:
            event.update(propertyName=name, propertyValue=value or "")
        self.events.append(event)

    def take_events(self) -> list[dict[str, Any]]:
        with self.lock:
            events, self.events = self.events, []
            return events


def _as_str(value: Any) -> str | None:
    """HubSpot stores every property as a string; booleans as "true"/"false"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
