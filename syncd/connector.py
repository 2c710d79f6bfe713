"""The connector contract: small capabilities, not one big interface.

A connector is a class registered under the entry-point group `syncd.connectors`. Its name is
used everywhere: the entry point, the `[name]` table of the config, `source: name` and
`name.action` in mapping files. It overrides only the capabilities it has:

- `verify_webhook` / `parse_webhook`: receive deliveries at `POST /webhooks/<name>`;
- `fetch`: read one object's current state (`fetch_many`: several at once, optional);
- `poll`: list what changed since a cursor;
- `query`: list objects for a cron rule's `for_each`;
- actions, declared with `@action` (typed params) and an optional `.finder` that looks for
  an effect already made with the action's idempotency key.

Connectors never touch the store: the engine hands them what they need and commits what
they return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from syncd.clock import Clock, SystemClock
from syncd.errors import SyncdError
from syncd.model import (
    ActionContext,
    ActionResult,
    Hint,
    ObjectRef,
    Observation,
    PollPage,
    WebhookRequest,
)

ENTRY_POINT_GROUP = "syncd.connectors"

P = TypeVar("P", bound=BaseModel)


class ConnectorSettings(BaseModel):
    """Keys every connector table accepts. Connectors subclass this for their own keys.

    Declare secrets as `SecretStr`: the config loader fills them from the environment, a
    `<key>_file`, or a systemd credential, and they never print.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    base_url: str | None = None
    timeout_seconds: float = 30.0
    poll_interval_seconds: float = 60.0
    # At most this many of its actions performed at once (None: half the executor's
    # workers), so a slow or failing API never holds every worker.
    max_in_flight: int | None = Field(None, ge=1)


class ParamsModel(BaseModel):
    """Base for action parameter models: unknown keys are an error in a mapping file."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionSpec(Generic[P]):
    """One action a connector performs: `connector.name` in mapping files."""

    name: str
    params: type[P]
    perform: Callable[[Any, P, ActionContext], ActionResult]
    find_existing: Callable[[Any, P, ActionContext], ActionResult | None] | None = None
    # True when performing twice has the same effect as once (an update, an upsert by key):
    # then no finder is needed.
    idempotent: bool = False
    description: str = ""
    # Optional: perform several actions in one request (Airtable: 10 rows per call).
    # `batch_key(params)` says which actions may go together; `batch_size` caps a batch.
    perform_batch: Callable[[Any, list[P], list[ActionContext]], list[ActionResult]] | None = None
    batch_key: Callable[[P], Any] | None = None
    batch_size: int = 1
    # Optional: perform several first attempts from one thread, each its own request, up to
    # `together_window` of them in flight at once (passed to the function). One result per
    # action, in order: its ActionResult, or the exception that stopped it.
    perform_together: Callable[[Any, list[P], list[ActionContext], int], list[Any]] | None = None
    together_window: int = 1

    def finder(
        self, fn: Callable[[Any, P, ActionContext], ActionResult | None]
    ) -> Callable[[Any, P, ActionContext], ActionResult | None]:
        """Decorator: the look-up run before retrying an action that may have been applied."""
        self.find_existing = fn
        return fn

    def batcher(
        self, *, key: Callable[[P], Any], size: int
    ) -> Callable[[Callable[[Any, list[P], list[ActionContext]], list[ActionResult]]], Any]:
        """Decorator: perform up to `size` actions with equal `key(params)` in one call. The
        function returns one ActionResult per action, in order; it must be idempotent."""

        def wrap(fn: Callable[[Any, list[P], list[ActionContext]], list[ActionResult]]) -> Any:
            self.perform_batch, self.batch_key, self.batch_size = fn, key, size
            return fn

        return wrap

    def together(
        self, *, window: int
    ) -> Callable[[Callable[[Any, list[P], list[ActionContext], int], list[Any]]], Any]:
        """Decorator: perform several of these actions from one thread, up to `window` of
        their requests in flight at once. The function gets the params, contexts and the
        window to keep, and returns, per action in order, its ActionResult or the exception
        that stopped it; it must do for each exactly what `perform` does (the executor sends
        only first attempts that need no look-up this way)."""

        def wrap(fn: Callable[[Any, list[P], list[ActionContext], int], list[Any]]) -> Any:
            self.perform_together, self.together_window = fn, window
            return fn

        return wrap


def action(
    name: str, params: type[P], *, idempotent: bool = False
) -> Callable[[Callable[[Any, P, ActionContext], ActionResult]], ActionSpec[P]]:
    """Declare a connector method as the action `name` with the parameter model `params`."""

    def wrap(fn: Callable[[Any, P, ActionContext], ActionResult]) -> ActionSpec[P]:
        return ActionSpec(
            name=name,
            params=params,
            perform=fn,
            idempotent=idempotent,
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
        )

    return wrap


class Connector:
    """Base class. Subclasses set `name`, `Settings`, and override what they can do."""

    name: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    # Headers kept with a stored webhook delivery (lower-case); nothing else is stored.
    webhook_headers: ClassVar[tuple[str, ...]] = ()
    actions: ClassVar[dict[str, ActionSpec[Any]]] = {}
    # Secret settings without which the connector cannot run (checked at `syncd run`; the
    # settings allow them empty so that `syncd check` works on a machine without secrets).
    required_secrets: ClassVar[tuple[str, ...]] = ()
    # Optional click group of connector-specific commands: `syncd <name> <command>`.
    cli: ClassVar[Any] = None
    # Versions, history entries and `Observation.created` are epoch ms at the source, so
    # history from before go-live is told apart by time (syncd.golive). False: versions are
    # counters; the source is not baselined (every change fires, as before go-live existed).
    golive_baseline: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, ActionSpec[Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, ActionSpec):
                    found[value.name] = value
        cls.actions = found

    def __init__(self, settings: ConnectorSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()

    # -- capabilities: override what the connector can do -------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        """Check authenticity and shape; return the delivery id used for dedupe.

        Raise `WebhookRejected(4xx, reason)` on a bad signature, stale timestamp or malformed
        body. Called before the delivery is stored, so keep it cheap and local (no API call).
        """
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        """Turn a stored, verified delivery into hints of objects that may have changed."""
        raise NotImplementedError

    def fetch(self, ref: ObjectRef) -> Observation | None:
        """Read one object's current state; None when it no longer exists."""
        raise NotImplementedError

    # The most objects `fetch_many` is given at once.
    fetch_batch_size: ClassVar[int] = 100

    def fetch_many(self, refs: list[ObjectRef]) -> dict[ObjectRef, Observation]:
        """Read several objects of one type in as few requests as the API allows (batch
        reads). Optional: the inbox uses it when overridden (`can("fetch_many")`).

        Return the objects found; one left out (gone, or in doubt) is then fetched alone with
        `fetch`, and when the call raises, every object is, so one bad object never stalls
        the others and a 404 keeps meaning what it means for `fetch`."""
        raise NotImplementedError

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        """One page of objects of `object_type` changed since `cursor` (None: from the start)."""
        raise NotImplementedError

    def query(self, object_type: str, query: dict[str, Any]) -> Iterator[Observation]:
        """Objects matching a connector-specific query, for cron rules' `for_each`."""
        raise NotImplementedError

    def check_mapping_offline(self, rules: Any) -> list[str]:
        """What `syncd check` can still say without credentials (from static knowledge):
        warnings, since the live account may know more."""
        return []

    def use_fields(self, fields: dict[str, set[str]]) -> None:
        """The fields the loaded rules read, by object type (syncd.mapping.fields): a
        connector that asks its API for a list of fields adds these, so a field a rule uses
        is fetched without any config. Called at start and on every reload."""

    # Value names known without the API ((object type, field) -> {name: stored value}), for
    # dry runs and offline checks: HubSpot's default pipeline, say.
    STATIC_VALUE_ALIASES: dict[tuple[str, str], dict[str, str]] = {}

    def value_aliases(self, object_type: str, field: str) -> dict[str, str]:
        """Human names for stored values of a field (e.g. HubSpot stage label -> stage id).

        Lets mapping files say `to: Closed Won` where the API says `closedwon`.
        """
        return {}

    def poll_streams(self) -> Iterable[str]:
        """The object types polled by default (configurable per connector)."""
        return ()

    def acknowledge_webhook(self, request: WebhookRequest) -> None:
        """Called after the changes of a delivery are committed: the moment to move a
        connector-side cursor (Airtable's payload cursor). A crash before it only means the
        same changes are hinted again, which the snapshot diff absorbs."""

    def attach(self, state: Any, secrets: Any) -> None:
        """The engine lends durable state: `state` (syncd.kv.KeyValue, not for secrets) and
        `secrets` (syncd.kv.SecretFile, a 0600 file in the state directory)."""
        self.state = state
        self.secrets = secrets

    def housekeeping(self) -> None:
        """Periodic upkeep the daemon runs every few hours (Airtable: refresh webhooks well
        before their 7-day expiry, recreate an expired one)."""

    def governors(self) -> list[Any]:
        """Every rate governor (syncd.governor.Governor) this connector's requests pass: one
        per API account (a token; an Airtable base). The daemon reads them for /metrics,
        shares their windows through PostgreSQL on replicas and closes them at shutdown.
        A connector that calls no rate-limited API returns none."""
        return []

    def governor_for(self, action: str, params: dict[str, Any]) -> Any:
        """The governor an action's requests pass, or None. The executor asks it, before
        marking the action in flight, whether a write would have to wait now; if so the
        action is deferred instead of held. The default: the only governor, if one."""
        found = self.governors()
        return found[0] if len(found) == 1 else None

    def check_mapping(self, rules: Any) -> list[str]:
        """Extra checks of the rules against the live account (stage names, field names),
        run by `syncd check` when credentials are available. Problems as text."""
        return []

    def close(self) -> None:
        """Release clients and sockets."""

    # -- helpers -------------------------------------------------------------------------

    def can(self, capability: str) -> bool:
        """True when this connector overrides `capability` (e.g. "poll", "verify_webhook")."""
        mine = getattr(type(self), capability, None)
        return mine is not None and mine is not getattr(Connector, capability, None)

    def secret_values(self) -> list[str]:
        """Every secret in this connector's settings, for log redaction."""
        out = []
        for value in self.settings.__dict__.values():
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


class UnknownConnector(SyncdError):
    pass


@lru_cache(maxsize=1)
def available() -> dict[str, Any]:
    """Installed connectors by name (entry points, not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_class(name: str) -> type[Connector]:
    """Import the connector registered as `name`."""
    eps = available()
    if name not in eps:
        raise UnknownConnector(
            f"unknown connector {name!r} (installed: {', '.join(sorted(eps)) or 'none'})"
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise UnknownConnector(f"entry point {name!r} is not a syncd Connector")
    return cls
