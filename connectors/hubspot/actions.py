"""Actions on HubSpot: `hubspot.update_deal` and `hubspot.add_note`.

`update_deal` sets properties (idempotent: the same values twice leave the same deal).
`add_note` creates a note: HubSpot takes no idempotency key, so the note carries a marker
derived from the action's key, and the finder looks for it among the deal's notes before a
retry creates another.

The notes package of HubSpot's client (with its parent, some 90 modules) is imported by the
note actions when they first run, not at start: an idle daemon needs none of it (issue 17).
"""

from __future__ import annotations

import hashlib
from typing import Any

from hubspot.crm.deals import SimplePublicObjectInput

from connectors.hubspot.client import HubSpotApi
from connectors.hubspot.deals import DealReader
from connectors.hubspot.stages import StageCatalog
from connectors.hubspot.timefmt import iso
from syncd.sdk import ActionContext, ActionResult, Clock, ParamsModel, PermanentError, action, to_ms

NOTE_TO_DEAL_TYPE_ID = 214  # HubSpot-defined association type "note to deal"
NOTES_PAGE = 100


class UpdateDealParams(ParamsModel):
    deal_id: str
    properties: dict[str, Any]


class AddNoteParams(ParamsModel):
    deal_id: str
    body: str


def note_marker(key: str) -> str:
    """A hidden marker naming the action; a hash, so no key can break out of the comment."""
    return f"syncd:key={hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _as_property(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class DealActions:
    """Mixed into HubSpotConnector, which provides these attributes."""

    api: HubSpotApi
    stages: StageCatalog
    reader: DealReader
    clock: Clock

    @action("update_deal", UpdateDealParams, idempotent=True)
    def update_deal(self, params: UpdateDealParams, ctx: ActionContext) -> ActionResult:
        """Set properties of a deal (a stage may be given by its label)."""
        properties = {k: _as_property(v) for k, v in params.properties.items()}
        if "dealstage" in properties:
            stage = self.stages.resolve(properties["dealstage"])
            if stage is None:
                raise PermanentError(f"unknown deal stage {properties['dealstage']!r}")
            properties["dealstage"] = stage
        self.api.call(
            self.api.deals.update_with_http_info,
            params.deal_id,
            SimplePublicObjectInput(properties=properties),
            write=True,
        )
        return ActionResult(external_id=params.deal_id, url=self.reader.deal_url(params.deal_id))

    @action("add_note", AddNoteParams)
    def add_note(self, params: AddNoteParams, ctx: ActionContext) -> ActionResult:
        """Attach a note to a deal, once per idempotency key."""
        from hubspot.crm.objects.notes import (
            AssociationSpec,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectInputForCreate,
        )

        body = f"{params.body}\n<!-- {note_marker(ctx.key)} -->"
        note = self.api.call(
            self.api.notes.create_with_http_info,
            SimplePublicObjectInputForCreate(
                properties={"hs_note_body": body, "hs_timestamp": iso(to_ms(self.clock.now()))},
                associations=[
                    PublicAssociationsForObject(
                        to=PublicObjectId(id=params.deal_id),
                        types=[
                            AssociationSpec(
                                association_category="HUBSPOT_DEFINED",
                                association_type_id=NOTE_TO_DEAL_TYPE_ID,
                            )
                        ],
                    )
                ],
            ),
            write=True,
        )
        return ActionResult(external_id=str(note.id), url=self.reader.deal_url(params.deal_id))

    @add_note.finder
    def find_note(self, params: AddNoteParams, ctx: ActionContext) -> ActionResult | None:
        from hubspot.crm.objects.notes import BatchReadInputSimplePublicObjectId as NoteBatchRead

        marker = note_marker(ctx.key)
        for note_ids in self._deal_note_pages(params.deal_id):
            answer = self.api.call(
                self.api.notes_batch.read_with_http_info,
                NoteBatchRead(
                    inputs=[{"id": i} for i in note_ids],
                    properties=["hs_note_body"],
                    properties_with_history=[],
                ),
            )
            for note in answer.results:
                if marker in ((note.properties or {}).get("hs_note_body") or ""):
                    return ActionResult(
                        external_id=str(note.id), url=self.reader.deal_url(params.deal_id)
                    )
        return None

    def _deal_note_pages(self, deal_id: str) -> Any:
        """Ids of the deal's notes, a page at a time."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": NOTES_PAGE}
            if after:
                kwargs["after"] = after
            page = self.api.call(
                self.api.associations.get_page_with_http_info, "deals", deal_id, "notes", **kwargs
            )
            ids = [str(link.to_object_id) for link in page.results]
            if ids:
                yield ids
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return
