"""Polling deals changed since a cursor, through CRM search.

The cursor is JSON: {"ts": ms, "tie": id|null, "strict": bool}.

Why not page with `after`: `after` is an offset into a result set that moves while it is
read. A deal modified between two pages jumps to the end and every deal behind it shifts one
place forward, so one of them is never served; once the cursor passes its timestamp it is
lost. And offsets stop at the search cap (10,000). So every page is a fresh query from the
newest timestamp seen ("restart from the last seen timestamp", on every page):

- Normal mode: `hs_lastmodifieddate GTE ts` sorted ascending, one page of up to 200. The
  deals at the newest timestamp of a page come again at the top of the next one (the engine
  drops them by version; no second history read is made for them).
- Tie mode: when a whole page shares one timestamp (`ts` would not move), deals with
  `hs_lastmodifieddate EQ ts` are listed by `hs_object_id GT tie`, then polling goes on with
  `GT ts` ("strict"). No query repeats itself, so there is no endless loop.

An idle cycle is one search request. Deals that changed are then batch-read with their
dealstage history (search cannot return history) and, if configured, their context.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from hubspot.crm.deals import Filter, FilterGroup, PublicObjectSearchRequest

from connectors.hubspot.client import HubSpotApi
from connectors.hubspot.deals import VERSION_PROPERTY, DealReader
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.timefmt import parse_ms
from syncd.sdk import Observation, PollPage

REMEMBERED_VERSIONS = 20_000


@dataclass
class Cursor:
    ts: int = 0
    tie: str | None = None  # tie mode: last hs_object_id listed at `ts` ("" = from the start)
    strict: bool = False  # every deal at `ts` was seen: search GT instead of GTE

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        if text.isdigit():  # a bare timestamp (backfill from a date)
            return cls(ts=int(text))
        return cls(**json.loads(text))

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


class DealPoller:
    def __init__(self, api: HubSpotApi, settings: HubSpotSettings, reader: DealReader) -> None:
        self.api = api
        self.settings = settings
        self.reader = reader
        # deal id -> version already returned with history: a boundary repeat needs no
        # second batch read (keeps an idle cycle at one request). Bounded, lost on restart.
        self._seen: OrderedDict[str, int] = OrderedDict()

    def poll(self, cursor_text: str | None) -> PollPage:
        cursor = Cursor.parse(cursor_text)
        if cursor.tie is not None:
            return self._tie_page(cursor)
        limit = self.settings.search_page_size
        op = "GT" if cursor.strict else "GTE"
        results = self._search(
            [Filter(property_name=VERSION_PROPERTY, operator=op, value=str(cursor.ts))],
            VERSION_PROPERTY,
            limit,
        )
        if not results:
            return PollPage([], cursor.dump(), more=False)
        observations = self._observe(results)
        newest = max(cursor.ts, *(parse_ms(_modified(d)) or 0 for d in results))
        full = len(results) >= limit
        if full and newest == cursor.ts and not cursor.strict:
            # A whole page modified in the same millisecond: list those deals by id.
            return PollPage(observations, Cursor(ts=cursor.ts, tie="").dump(), more=True)
        return PollPage(observations, Cursor(ts=newest).dump(), more=full)

    def _tie_page(self, cursor: Cursor) -> PollPage:
        limit = self.settings.search_page_size
        filters = [Filter(property_name=VERSION_PROPERTY, operator="EQ", value=str(cursor.ts))]
        if cursor.tie:
            filters.append(Filter(property_name="hs_object_id", operator="GT", value=cursor.tie))
        results = self._search(filters, "hs_object_id", limit)
        observations = self._observe(results)
        if len(results) < limit:
            return PollPage(observations, Cursor(ts=cursor.ts, strict=True).dump(), more=True)
        return PollPage(
            observations, Cursor(ts=cursor.ts, tie=str(results[-1].id)).dump(), more=True
        )

    def _search(self, filters: list[Filter], sort_by: str, limit: int) -> list[Any]:
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=filters)],
            sorts=[{"propertyName": sort_by, "direction": "ASCENDING"}],
            properties=self.settings.properties(),
            limit=limit,
        )
        answer = self.api.call(self.api.deals_search.do_search_with_http_info, request, search=True)
        return list(answer.results)

    def search_by_id(self, filters: list[Filter], after_id: str) -> list[Any]:
        """One page of deals matching `filters` with an id above `after_id`, by id."""
        more = [Filter(property_name="hs_object_id", operator="GT", value=after_id)]
        return self._search([*filters, *more], "hs_object_id", self.settings.search_page_size)

    def _observe(self, results: list[Any]) -> list[Observation]:
        """Observations in search order: re-read with history unless already returned."""
        names = self.reader.field_names()
        shallow = [self.reader.observation(deal, names) for deal in results]
        changed = [o.ref.id for o in shallow if self._seen.get(o.ref.id) != o.version]
        reread = self.reader.read_many(changed, context=self.settings.poll_context)
        full = {o.ref.id: o for o in reread}
        out = []
        for obs in shallow:
            chosen = full.get(obs.ref.id, obs)
            if chosen is obs and obs.ref.id in changed:
                continue  # deleted between the search and the read: a webhook/fetch says so
            out.append(chosen)
            self._remember(chosen)
        return out

    def _remember(self, obs: Observation) -> None:
        if obs.version is None:
            return
        self._seen[obs.ref.id] = obs.version
        self._seen.move_to_end(obs.ref.id)
        while len(self._seen) > REMEMBERED_VERSIONS:
            self._seen.popitem(last=False)


def _modified(deal: Any) -> str | None:
    return (deal.properties or {}).get(VERSION_PROPERTY)
