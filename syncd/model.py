"""The values that flow through the engine: objects, observations, events, webhook requests.

Every source (webhook, poll, schedule) only says "this object may have changed"; the engine
reads the object's current state (an `Observation`), diffs it with the stored snapshot, and
turns the difference into `Event`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Names one object at one source: ("hubspot", "deal", "123")."""

    source: str
    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.source}:{self.type}:{self.id}"


@dataclass
class Observation:
    """The state of one object as read from its source.

    - `fields`: the object's own properties (JSON values); these are diffed.
    - `version`: a number that grows with every change of the object (usually its
      last-modified time in ms). An observation older than the snapshot is ignored, which is
      what makes out-of-order and duplicated deliveries harmless. None: always applied.
    - `history`: for fields whose every intermediate value matters (a deal's stage), the
      values in order as `(version, value)` pairs, ending with the current one. The engine
      turns the entries newer than the snapshot into one transition each, in order.
    - `context`: extra data for templates (associated company, owner, a link); not diffed.
    - `deleted`: the object is gone at the source.
    - `created`: when the object was created at the source (epoch ms), if known; an object
      first seen by syncd is judged by it against go-live (see syncd.golive).
    """

    ref: ObjectRef
    fields: dict[str, JSON]
    version: int | None = None
    history: dict[str, list[tuple[int, JSON]]] = field(default_factory=dict)
    context: dict[str, JSON] = field(default_factory=dict)
    deleted: bool = False
    created: int | None = None


@dataclass(frozen=True)
class Event:
    """One change of one object. kind: "created", "changed" (of `field`) or "deleted"."""

    ref: ObjectRef
    kind: str
    field: str | None = None
    old: JSON = None
    new: JSON = None
    version: int | None = None


@dataclass
class PollPage:
    """One page of a poll: what changed, and the cursor to store with it.

    The engine commits `observations` and `cursor` in one transaction, so a cursor never moves
    past data that is not saved. `more`: call poll again at once with `cursor`.
    """

    observations: list[Observation]
    cursor: str | None
    more: bool = False


@dataclass(frozen=True)
class Hint:
    """A webhook's word that `ref` changed. `observation` is set when the delivery itself
    carries the object's full, trustworthy state (then no fetch is needed)."""

    ref: ObjectRef
    observation: Observation | None = None


@dataclass
class WebhookRequest:
    """A webhook delivery as received: what a connector needs to verify and parse it.

    `url` is the URI as the sender called it (rebuilt from `[http] public_url` behind a
    proxy); `headers` keys are lower-case.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    received_at_ms: int


@dataclass(frozen=True)
class ActionContext:
    """What a connector knows about the action it performs."""

    key: str  # the idempotency key: deterministic, unique per planned action
    rule_id: str
    attempt: int  # 1 for the first try
    ref: ObjectRef | None = None


@dataclass(frozen=True)
class ActionResult:
    """What a performed (or found) action left at the target: its id and a link if any."""

    external_id: str | None = None
    url: str | None = None
