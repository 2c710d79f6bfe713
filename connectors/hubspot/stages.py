"""Deal pipelines and stages: labels ("Closed Won") for the ids the API stores ("closedwon").

Read from the pipelines API once and cached; a label or id not in the cache triggers one
refresh (at most once a minute, so a typo in a mapping cannot hammer the API). The labels
the rules compile with are read fresh (`current_label_to_id`): the engine keeps them in its
store and re-reads them periodically, so a renamed stage is seen without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.hubspot.client import HubSpotApi

REFRESH_AT_MOST_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    pipeline_id: str
    pipeline_label: str


class StageCatalog:
    def __init__(self, api: HubSpotApi) -> None:
        self.api = api
        self._stages: list[Stage] | None = None
        self._loaded_at: datetime | None = None

    def refresh(self) -> None:
        answer = self.api.call(self.api.pipelines.get_all_with_http_info, "deals")
        pipelines = sorted(answer.results, key=lambda p: (p.id != "default", p.display_order))
        self._stages = [
            Stage(s.id, s.label, p.id, p.label)
            for p in pipelines
            if not p.archived
            for s in sorted(p.stages, key=lambda s: s.display_order)
            if not s.archived
        ]
        self._loaded_at = self.api.clock.now()

    def stages(self) -> list[Stage]:
        if self._stages is None:
            self.refresh()
        return list(self._stages or [])

    def _refresh_on_miss(self) -> bool:
        """Refresh after a miss unless the cache is fresh; True when it was refreshed."""
        if self._loaded_at is not None:
            age = (self.api.clock.now() - self._loaded_at).total_seconds()
            if age < REFRESH_AT_MOST_EVERY_SECONDS:
                return False
        self.refresh()
        return True

    def current_label_to_id(self) -> dict[str, str]:
        """`label_to_id` from a read at most a minute old; raises when HubSpot cannot answer
        (never an empty answer standing in for a failed read)."""
        self._refresh_on_miss()
        return self.label_to_id()

    def label_to_id(self) -> dict[str, str]:
        """{label: stage id}; the default pipeline wins when two pipelines share a label."""
        out: dict[str, str] = {}
        for stage in self.stages():
            out.setdefault(stage.label, stage.id)
        return out

    def find(self, stage_id: str | None) -> Stage | None:
        if not stage_id:
            return None
        for attempt in range(2):
            for stage in self.stages():
                if stage.id == stage_id:
                    return stage
            if attempt == 0 and not self._refresh_on_miss():
                return None
        return None

    def resolve(self, label: str) -> str | None:
        """The stage id for a label (or an id given as is), refreshing the cache on a miss."""
        for attempt in range(2):
            aliases = self.label_to_id()
            if label in aliases:
                return aliases[label]
            if label in aliases.values():
                return label
            if attempt == 0 and not self._refresh_on_miss():
                return None
        return None
