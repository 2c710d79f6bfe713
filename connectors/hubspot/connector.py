"""The HubSpot connector: deals in (webhooks, fetch, poll), deal updates and notes out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from hubspot.crm.deals import Filter

from connectors.hubspot import webhooks
from connectors.hubspot.actions import DealActions
from connectors.hubspot.api import HubSpotApi
from connectors.hubspot.deals import DealReader
from connectors.hubspot.poll import Cursor, DealPoller
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.stages import StageCatalog
from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import PermanentError
from syncd.model import Hint, ObjectRef, Observation, PollPage, WebhookRequest

DEAL = "deal"


class HubSpotConnector(DealActions, Connector):
    name = "hubspot"
    Settings = HubSpotSettings
    webhook_headers = webhooks.WEBHOOK_HEADERS
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

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        self._only_deals(object_type)
        return self.poller.poll(cursor)

    def poll_streams(self) -> list[str]:
        return [DEAL]

    def backfill(self, since: datetime | None = None,
                 on_page: Callable[[PollPage], None] | None = None,
                 cursor: str | None = None) -> Iterator[PollPage]:
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

    def value_aliases(self, object_type: str, field: str) -> dict[str, str]:
        if object_type == DEAL and field == "dealstage":
            return self.stages.label_to_id()
        return {}

    def stage_labels(self) -> dict[str, str]:
        """{stage id: label} of every live pipeline, for checking mapping files."""
        return {stage.id: stage.label for stage in self.stages.stages()}

    def resolve_stage(self, label_or_id: str) -> str | None:
        """A stage id for a label; reloads the pipelines once when it is not known."""
        return self.stages.resolve(label_or_id)

    def close(self) -> None:
        self.api.close()

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _only_deals(object_type: str) -> None:
        if object_type != DEAL:
            raise PermanentError(f"hubspot: unsupported object type {object_type!r}")
