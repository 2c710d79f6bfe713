"""The HubSpot connector: deals in (webhooks, fetch, poll), deal updates and notes out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from hubspot.crm.deals import Filter

from connectors.hubspot import webhooks
from connectors.hubspot.actions import DealActions
from connectors.hubspot.cli import hubspot_cli
from connectors.hubspot.client import HubSpotApi
from connectors.hubspot.deals import DealReader
from connectors.hubspot.poll import Cursor, DealPoller
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.stages import StageCatalog
from syncd.sdk import (
    WHOLE_OBJECT,
    Clock,
    Connector,
    Governor,
    Hint,
    ObjectRef,
    Observation,
    PermanentError,
    PollPage,
    WebhookRequest,
    rule_fields,
    to_ms,
)

DEAL = "deal"
STAGE = "dealstage"
CONDITION_GROUPS = ("all", "any", "not")


def _stage_values(value: Any) -> list[str]:
    """Stage names written literally in a trigger or condition value (templates skipped)."""
    if isinstance(value, str):
        return [] if "{{" in value or "{%" in value else [value]
    if isinstance(value, list):
        return [v for item in value for v in _stage_values(item)]
    if isinstance(value, dict):  # {eq: ..}, {in: [..]}, {ne: ..}
        return [v for item in value.values() for v in _stage_values(item)]
    return []


def _condition_stages(condition: Any) -> list[str]:
    """Stage values a rule's `if` compares `dealstage` with, at any depth of all/any/not."""
    if isinstance(condition, list):
        return [v for item in condition for v in _condition_stages(item)]
    if not isinstance(condition, dict):
        return []
    out = _stage_values(condition[STAGE]) if STAGE in condition else []
    for group in CONDITION_GROUPS:
        if group in condition:
            out += _condition_stages(condition[group])
    return out


class HubSpotConnector(DealActions, Connector):
    name = "hubspot"
    required_secrets = ("access_token",)
    Settings = HubSpotSettings
    webhook_headers = webhooks.WEBHOOK_HEADERS
    cli = hubspot_cli
    settings: HubSpotSettings

    def __init__(self, settings: HubSpotSettings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock)
        self.api = HubSpotApi(settings, self.clock)
        self.stages = StageCatalog(self.api)
        self.reader = DealReader(self.api, settings, self.stages)
        self.poller = DealPoller(self.api, settings, self.reader)

    # -- webhooks ----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        return webhooks.verify(self.settings, self.clock, request)

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        return webhooks.parse(request)

    # -- reading -----------------------------------------------------------------------

    def fetch(self, ref: ObjectRef) -> Observation | None:
        self._only_deals(ref.type)
        return self.reader.read_one(ref.id)

    # Deals with stage history: HubSpot reads at most 50 a batch; context (associations,
    # companies, contacts) is read for the whole batch at once.
    fetch_batch_size = 100

    def fetch_many(self, refs: list[ObjectRef]) -> dict[ObjectRef, Observation]:
        """Deals by batch read (missing ones are left out: the inbox fetches them alone)."""
        for ref in refs:
            self._only_deals(ref.type)
        return {obs.ref: obs for obs in self.reader.read_many([ref.id for ref in refs])}

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        self._only_deals(object_type)
        return self.poller.poll(cursor)

    def poll_streams(self) -> list[str]:
        return [DEAL]

    def backfill(
        self,
        since: datetime | None = None,
        on_page: Callable[[PollPage], None] | None = None,
        cursor: str | None = None,
    ) -> Iterator[PollPage]:
        """Every deal modified since `since` (all when None), page by page.

        Resume an interrupted backfill by passing the last page's `cursor`. `on_page` is
        called with each page before it is yielded (e.g. to commit it).
        """
        current = cursor or Cursor(ts=to_ms(since) if since else 0).dump()
        while True:
            page = self.poller.poll(current)
            if on_page is not None:
                on_page(page)
            yield page
            if not page.more or page.cursor is None:
                return
            current = page.cursor

    def query(self, object_type: str, query: dict[str, Any]) -> Iterator[Observation]:
        """Deals whose properties equal `query["where"]` (stage by label or id), by id."""
        self._only_deals(object_type)
        filters = []
        for name, value in (query.get("where") or {}).items():
            if name == "dealstage":
                value = self.stages.resolve(str(value)) or str(value)
            filters.append(Filter(property_name=name, operator="EQ", value=str(value)))
        last = "0"
        while True:
            page = self.poller.search_by_id(filters, last)
            if not page:
                return
            yield from self.reader.read_many([deal.id for deal in page])
            if len(page) < self.settings.search_page_size:
                return
            last = str(page[-1].id)

    # -- stages ------------------------------------------------------------------------

    # What a deal's context brings (connectors/hubspot/deals.py): templates read
    # these as `deal.company` etc., and they are no deal properties to fetch.
    CONTEXT_KEYS = frozenset(
        {"url", "stage_label", "pipeline_label", "companies", "company", "contacts", "owner"}
    )
    # The part of the context that costs requests (associations, companies, contacts, the
    # owner): read only when a rule reads it, or uses a deal whole.
    LINKED_KEYS = frozenset({"companies", "company", "contacts", "owner", WHOLE_OBJECT})

    def use_fields(self, fields: dict[str, set[str]]) -> None:
        read = fields.get(DEAL, set())
        self.settings._rule_properties = sorted(read - self.CONTEXT_KEYS - {WHOLE_OBJECT})
        self.reader.linked_context = bool(read & self.LINKED_KEYS)

    # HubSpot's default sales pipeline (every portal has it) as HubSpot and the fake name it.
    STATIC_VALUE_ALIASES = {
        (DEAL, "dealstage"): {
            "Appointment Scheduled": "appointmentscheduled",
            "Qualified To Buy": "qualifiedtobuy",
            "Presentation Scheduled": "presentationscheduled",
            "Decision Maker Bought-In": "decisionmakerboughtin",
            "Contract Sent": "contractsent",
            "Lead": "lead",
            "Qualified": "qualified",
            "Proposal": "proposal",
            "Negotiation": "negotiation",
            "Contract Admin": "contractadmin",
            "Closed Won": "closedwon",
            "Closed Lost": "closedlost",
        }
    }

    def value_aliases(self, object_type: str, field: str) -> dict[str, str]:
        if object_type == DEAL and field == "dealstage":
            return self.stages.current_label_to_id()
        return {}

    def stage_labels(self) -> dict[str, str]:
        """{stage id: label} of every live pipeline, for checking mapping files."""
        return {stage.id: stage.label for stage in self.stages.stages()}

    def resolve_stage(self, label_or_id: str) -> str | None:
        """A stage id for a label; reloads the pipelines once when it is not known."""
        return self.stages.resolve(label_or_id)

    def check_mapping(self, rules: Any) -> list[str]:
        """Deal stages the rules name (triggers, conditions, `update_deal`), checked against
        the live pipelines. Raises when HubSpot cannot be reached."""
        self.stages.refresh()
        known = self.stage_labels()
        names = set(known) | set(known.values())
        problems = self._check_properties(rules)
        for compiled in rules.rules:
            where = f"{compiled.file}: rule {compiled.id}"
            for value in self._stages_named(compiled):
                if value not in names:
                    labels = ", ".join(sorted(set(known.values())))
                    problems.append(f"{where}: unknown deal stage {value!r} (stages: {labels})")
        return problems

    def check_mapping_offline(self, rules: Any) -> list[str]:
        """Stage names that are no stage (label or id) of HubSpot's default pipeline."""
        known = self.STATIC_VALUE_ALIASES[(DEAL, STAGE)]
        names = set(known) | set(known.values())
        out = []
        for compiled in rules.rules:
            for value in self._stages_named(compiled):
                if value not in names:
                    out.append(
                        f"{compiled.file}: rule {compiled.id}: deal stage {value!r} is "
                        "not in HubSpot's default pipeline (checked offline; give "
                        "credentials to check against your pipelines)"
                    )
        return out

    def _check_properties(self, rules: Any) -> list[str]:
        """Every deal property syncd asks for (the rules' fields, `deal_properties`,
        `extra_properties`) must exist in the portal: HubSpot leaves an unknown one out of
        its answer silently, and the rule using it would fail at every run."""
        answer = self.api.call(self.api.properties.get_all_with_http_info, "deals")
        existing = {p.name for p in answer.results}
        users: dict[str, list[str]] = {}
        read_by_any: set[str] = set()  # the context's names too: use_fields reads them
        for compiled in rules.rules:
            read = rule_fields(compiled).get(("hubspot", DEAL), set())
            read_by_any |= read
            for name in read - self.CONTEXT_KEYS - {WHOLE_OBJECT}:
                users.setdefault(name, []).append(compiled.id)
        self.use_fields({DEAL: read_by_any})
        problems = []
        for name in self.settings.properties():
            if name in existing:
                continue
            who = (
                f"used by rule(s) {', '.join(sorted(users[name]))}"
                if name in users
                else "listed in [hubspot] deal_properties or extra_properties"
            )
            problems.append(
                f"deal property {name!r} does not exist in HubSpot ({who}); "
                "fix the name, or create the property in HubSpot"
            )
        return problems

    @staticmethod
    def _stages_named(compiled: Any) -> list[str]:
        trigger = compiled.rule.when
        found: list[str] = []
        is_deal = getattr(trigger, "source", None) == "hubspot" and trigger.object == DEAL
        if is_deal and getattr(trigger, "field", None) == STAGE:
            found += _stage_values(trigger.from_) + _stage_values(trigger.to)
        entered = getattr(trigger, "entered", None)
        if is_deal and entered is not None and entered.field == STAGE:
            found += _stage_values(entered.value)
        for spec in (getattr(trigger, "for_each", None), getattr(trigger, "collect", None)):
            if spec is not None and spec.source == "hubspot":
                found += _stage_values((spec.query.get("where") or {}).get(STAGE))
        if is_deal or any(a.connector == "hubspot" for a in compiled.actions):
            found += _condition_stages(compiled.rule.if_)
        for act in compiled.actions:
            if act.name == "hubspot.update_deal":
                found += _stage_values((act.params.get("properties") or {}).get(STAGE))
        return list(dict.fromkeys(found))

    def governors(self) -> list[Governor]:
        return [self.api.governor]

    def close(self) -> None:
        self.api.close()

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _only_deals(object_type: str) -> None:
        if object_type != DEAL:
            raise PermanentError(f"hubspot: unsupported object type {object_type!r}")
