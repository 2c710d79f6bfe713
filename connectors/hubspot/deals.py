"""Reading deals into Observations: properties, dealstage history, and context for templates.

Context (company, contacts with their roles, owner, link, stage label) is gathered for a
batch of deals at once (v4 association batch reads, then company/contact batch reads), so
a fetch and a poll page cost the same handful of requests.

Reads that do not depend on each other go out together (`HubSpotApi.read_json`): the deal
batch reads (50 deals each) and both association reads (they only need the deal ids), then
the company and contact reads. A fetch costs two round trips instead of three to five (one
when no deal has a company or contact), with the same number of requests, whatever the
batch's size: a busy daemon's inbox thread waits for one round trip per batch, not four.

The batch reads of every fetch (deals, associations, companies, contacts) are `JsonRead`s:
plain JSON sent on http.client straight, all in flight at once from the calling thread
(`HubSpotApi.read_json`), with neither the SDK's request path nor its models (one per deal,
history entry, association and association type), nor a thread hand-off per read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from connectors.hubspot import sdk_speed
from connectors.hubspot.client import HubSpotApi, JsonRead, NotFoundError
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.stages import StageCatalog
from connectors.hubspot.timefmt import parse_ms
from syncd.sdk import ObjectRef, Observation, to_ms

SOURCE = "hubspot"
HISTORY_FIELDS = ["dealstage"]
# Changes with every write: it is the version, not a field to diff.
VERSION_PROPERTY = "hs_lastmodifieddate"
HISTORY_BATCH = 50  # HubSpot's cap on a batch read with propertiesWithHistory
BATCH = 100
PRIMARY_COMPANY_TYPE_ID = 5

sdk_speed.install()  # the SDK's answer parsing without its per-object costs


class AssociationType:
    """An `associationTypes` entry of a v4 association answer (JSON), with the attributes of
    the SDK's model that the context reads."""

    __slots__ = ("category", "label", "type_id")

    def __init__(self, entry: dict[str, Any]) -> None:
        self.category: str | None = entry.get("category")
        self.type_id: int | None = entry.get("typeId")
        self.label: str | None = entry.get("label")


# {deal id: {associated id: [association types with labels]}}; (companies, contacts).
DealLinks = dict[str, dict[str, list[AssociationType]]]
Links = tuple[DealLinks, DealLinks]


class HistoryEntry:
    """One `propertiesWithHistory` entry of a JSON answer, read as the SDK's model is."""

    __slots__ = ("timestamp", "value")

    def __init__(self, entry: dict[str, Any]) -> None:
        self.value = entry.get("value")
        self.timestamp = _when(entry.get("timestamp"))


class DealAnswer:
    """A deal of a batch read's JSON answer with the attributes `DealReader.observation`
    reads of the SDK's model (id, properties, properties_with_history, created_at,
    updated_at)."""

    __slots__ = ("created_at", "id", "properties", "properties_with_history", "updated_at")

    def __init__(self, deal: dict[str, Any]) -> None:
        self.id = deal["id"]
        self.properties = deal.get("properties") or {}
        self.properties_with_history = {
            name: [HistoryEntry(e) for e in entries]
            for name, entries in (deal.get("propertiesWithHistory") or {}).items()
        }
        self.created_at = _when(deal.get("createdAt"))
        self.updated_at = _when(deal.get("updatedAt"))


def _when(text: str | None) -> datetime | None:
    """An ISO 8601 instant as HubSpot writes it (`2026-12-01T05:00:00.123Z`)."""
    return datetime.fromisoformat(text) if text else None


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _joined(parts: Iterable[list[Observation]]) -> list[Observation]:
    return [obs for part in parts for obs in part]


def _merged(parts: Iterable[DealLinks]) -> DealLinks:
    out: DealLinks = {}
    for part in parts:
        out.update(part)
    return out


class DealReader:
    def __init__(self, api: HubSpotApi, settings: HubSpotSettings, stages: StageCatalog) -> None:
        self.api = api
        self.settings = settings
        self.stages = stages
        self._owners: dict[str, dict[str, Any] | None] = {}
        # The company, contacts and owner of each deal (two to four more requests a read,
        # in the same round trips): read unless the loaded rules read none of them (the
        # connector's `use_fields`). The url and stage labels cost nothing and stay.
        self.linked_context = True

    # -- reads -------------------------------------------------------------------------

    def read_one(self, deal_id: str) -> Observation | None:
        def get() -> Any:
            try:
                return self.api.call(
                    self.api.deals.get_by_id_with_http_info,
                    deal_id,
                    properties=self.settings.properties(),
                    properties_with_history=HISTORY_FIELDS,
                    archived=False,
                )
            except NotFoundError:
                return None

        if not self.linked_context:
            found = get()
            return None if found is None else self.observation(found)
        deal, company_links, contact_links = self.api.together(
            get,
            partial(self._links, deal_id, "companies"),
            partial(self._links, deal_id, "contacts"),
        )
        if deal is None:
            return None
        observation = self.observation(deal)
        self.add_context([observation], (company_links, contact_links))
        return observation

    def _links(self, deal_id: str, to_type: str) -> DealLinks:
        return _links_from(self.api.read_json([_links_read([deal_id], to_type)]))

    def read_many(self, deal_ids: list[str], *, context: bool = True) -> list[Observation]:
        """Batch-read deals with their stage history; deals gone since are left out.
        `context`: with each deal's company, contacts and owner (when `linked_context`)."""
        ids = list(dict.fromkeys(deal_ids))
        deal_reads = [self._deals_read(chunk) for chunk in _chunks(ids, HISTORY_BATCH)]
        if not (context and self.linked_context):
            return self._deals_from(self.api.read_json(deal_reads))
        link_reads = [
            _links_read(chunk, to_type)
            for to_type in ("companies", "contacts")
            for chunk in _chunks(ids, BATCH)
        ]
        answers = self.api.read_json([*deal_reads, *link_reads])
        out = self._deals_from(answers[: len(deal_reads)])
        links = answers[len(deal_reads) :]
        half = len(links) // 2  # the companies' chunks, then the contacts'
        self.add_context(out, (_links_from(links[:half]), _links_from(links[half:])))
        return out

    def _deals_read(self, ids: list[str]) -> JsonRead:
        """One batch read (at most HISTORY_BATCH deals) with the stage history."""
        return JsonRead(
            "read",
            "/crm/v3/objects/deals/batch/read?archived=false",
            {
                "inputs": [{"id": i} for i in ids],
                "properties": self.settings.properties(),
                "propertiesWithHistory": HISTORY_FIELDS,
            },
        )

    def _deals_from(self, answers: list[Any]) -> list[Observation]:
        names = self.field_names()
        return [
            self.observation(DealAnswer(deal), names)
            for answer in answers
            for deal in answer.get("results", ())
        ]

    # -- shaping -----------------------------------------------------------------------

    def field_names(self) -> list[str]:
        """The deal properties an observation keeps (the version property aside). Worked out
        once per batch: the settings' list is a pydantic private attribute, slow to read
        for every deal of a batch (issue 17)."""
        names = [*self.settings.properties(), "pipeline", "dealstage"]
        return [name for name in dict.fromkeys(names) if name != VERSION_PROPERTY]

    def observation(self, deal: Any, field_names: list[str] | None = None) -> Observation:
        """An Observation from a deal model (from get, batch read or search);
        `field_names`: `field_names()`, when the caller has it already."""
        props: dict[str, Any] = dict(deal.properties or {})
        version = parse_ms(props.get(VERSION_PROPERTY))
        if version is None and deal.updated_at is not None:
            version = to_ms(deal.updated_at)
        names = self.field_names() if field_names is None else field_names
        fields = {name: props.get(name) for name in names}
        history: dict[str, list[tuple[int, Any]]] = {}
        for name, values in (deal.properties_with_history or {}).items():
            history[name] = sorted((to_ms(v.timestamp), v.value) for v in values)
        stage = self.stages.find(fields.get("dealstage"))
        context: dict[str, Any] = {
            "url": self.deal_url(deal.id),
            "stage_label": stage.label if stage else None,
            "pipeline_label": stage.pipeline_label if stage else None,
        }
        created = parse_ms(props.get("createdate"))
        if created is None and getattr(deal, "created_at", None) is not None:
            created = to_ms(deal.created_at)
        return Observation(
            ObjectRef(SOURCE, "deal", str(deal.id)),
            fields,
            version,
            history,
            context,
            created=created,
        )

    def deal_url(self, deal_id: str) -> str | None:
        if self.settings.portal_id is None:
            return None
        return (
            f"https://{self.settings.ui_domain}/contacts/{self.settings.portal_id}"
            f"/record/0-3/{deal_id}"
        )

    # -- context -----------------------------------------------------------------------

    def add_context(self, observations: list[Observation], links: Links | None = None) -> None:
        """Fill company, contacts (with roles) and owner for a batch of deals. `links`: the
        deals' company and contact associations when already read (with the deals)."""
        if not observations:
            return
        if links is None:
            ids = [o.ref.id for o in observations]
            company_reads = [_links_read(chunk, "companies") for chunk in _chunks(ids, BATCH)]
            contact_reads = [_links_read(chunk, "contacts") for chunk in _chunks(ids, BATCH)]
            answers = self.api.read_json([*company_reads, *contact_reads])
            split = len(company_reads)
            links = (_links_from(answers[:split]), _links_from(answers[split:]))
        company_links, contact_links = links
        company_ids = [c for found in company_links.values() for c in found]
        contact_ids = [c for found in contact_links.values() for c in found]
        company_props = self.settings.company_properties
        contact_props = self.settings.contact_properties
        company_reads = _objects_reads("companies", company_ids, company_props)
        contact_reads = _objects_reads("contacts", contact_ids, contact_props)
        answers = self.api.read_json([*company_reads, *contact_reads])  # none: no request
        split = len(company_reads)
        companies = _objects_from(answers[:split], company_props)
        contacts = _objects_from(answers[split:], contact_props)
        for obs in observations:
            to_companies = company_links.get(obs.ref.id, {})
            linked = [
                {
                    "id": cid,
                    **companies[cid],
                    "primary": PRIMARY_COMPANY_TYPE_ID in [t.type_id for t in types],
                }
                for cid, types in to_companies.items()
                if cid in companies
            ]
            linked.sort(key=lambda c: not c["primary"])
            obs.context["companies"] = linked
            obs.context["company"] = linked[0] if linked else None
            obs.context["contacts"] = [
                _contact(cid, contacts[cid], types)
                for cid, types in contact_links.get(obs.ref.id, {}).items()
                if cid in contacts
            ]
            obs.context["owner"] = self._owner(obs.fields.get("hubspot_owner_id"))

    def _owner(self, owner_id: str | None) -> dict[str, Any] | None:
        if not owner_id:
            return None
        if owner_id not in self._owners:
            try:
                owner = self.api.call(self.api.owners.get_by_id_with_http_info, int(owner_id))
            except NotFoundError:
                self._owners[owner_id] = None
            else:
                name = " ".join(p for p in (owner.first_name, owner.last_name) if p)
                self._owners[owner_id] = {"id": owner_id, "name": name, "email": owner.email}
        return self._owners[owner_id]


def _links_read(deal_ids: list[str], to_type: str) -> JsonRead:
    """The v4 associations of at most BATCH deals to `to_type`, with their labels."""
    return JsonRead(
        "get_page",
        f"/crm/v4/associations/deals/{to_type}/batch/read",
        {"inputs": [{"id": i} for i in deal_ids]},
    )


def _links_from(answers: list[Any]) -> DealLinks:
    """{deal id: {associated id: [association types with labels]}} of association reads."""
    out: DealLinks = {}
    for answer in answers:
        for result in answer.get("results", ()):
            out[str(result["from"]["id"])] = {
                str(link["toObjectId"]): [
                    AssociationType(t) for t in link.get("associationTypes") or ()
                ]
                for link in result.get("to") or ()
            }
    return out


def _objects_reads(object_type: str, ids: list[str], properties: list[str]) -> list[JsonRead]:
    """Batch reads of companies or contacts (BATCH a read), each id once."""
    return [
        JsonRead(
            "read",
            f"/crm/v3/objects/{object_type}/batch/read",
            {
                "inputs": [{"id": i} for i in chunk],
                "properties": properties,
                "propertiesWithHistory": [],
            },
        )
        for chunk in _chunks(list(dict.fromkeys(ids)), BATCH)
    ]


def _objects_from(answers: list[Any], properties: list[str]) -> dict[str, dict[str, Any]]:
    """{id: {property: value}} of company or contact batch reads."""
    out: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for obj in answer.get("results", ()):
            found = obj.get("properties") or {}
            out[str(obj["id"])] = {p: found.get(p) for p in properties}
    return out


def _contact(contact_id: str, props: dict[str, Any], types: list[Any]) -> dict[str, Any]:
    roles = [t.label for t in types if t.label]
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    return {
        "id": contact_id,
        "name": name,
        **props,
        "role": roles[0] if roles else None,
        "roles": roles,
    }
