"""Value names the rules compile with (HubSpot stage labels -> stage ids), kept in the store.

A rule written `to: Closed Won` matches the stored id `closedwon` only through this alias.
Rules compiled without it would never match, and every stage change would be stored as
handled with no action: lost for good. So the aliases are:

- read from the connector, then kept in the `state` table (scope: the connector, key
  `aliases:<object>:<field>`), with the time of the read;
- used from the store when they are fresh, or when the API cannot answer (after a restart
  too); labels seen before are kept (a renamed stage keeps its id, so a rule that names the
  old label still means the same stage), the live answer wins on a clash;
- re-read every `refresh_seconds`; when what is stored differs from what the rules in force
  were compiled with (a renamed stage, another replica's read), the engine recompiles;
- when never read, observations of that source and object type are refused with
  `LookupsNotReady` (nothing is consumed: the poller keeps its cursor, the inbox keeps the
  delivery pending) and the read is retried with backoff.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import structlog

from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import TransientError
from syncd.kv import KeyValue
from syncd.store.db import Store

log = structlog.get_logger("syncd.lookups")

Key = tuple[str, str, str]  # (source, object type, field)
REFRESH_SECONDS = 300.0
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0


class LookupsNotReady(TransientError):
    """The rules of this source cannot be evaluated yet: retry later, consume nothing."""

    def __init__(
        self, source: str, object_type: str, missing: list[str], retry_after: float
    ) -> None:
        super().__init__(
            f"{source} {object_type}: waiting for {', '.join(missing)} (value names the rules "
            f"use, never read yet); nothing is ingested until they are",
            retry_after=retry_after,
        )
        self.source = source
        self.object_type = object_type


def _key_name(key: Key) -> str:
    return f"{key[0]}.{key[1]}.{key[2]} names"


class Lookups:
    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        clock: Clock,
        refresh_seconds: float = REFRESH_SECONDS,
        *,
        live: bool = True,
    ) -> None:
        self.store = store
        # False: only what the store holds, never an API read (`syncd status` and other
        # read-only commands: an operator's look must not wait for, or count against, an API).
        self.live = live
        self.connectors = connectors
        self.clock = clock
        self.refresh_ms = int(refresh_seconds * 1000)
        self._lock = threading.Lock()
        # What the rules in force were compiled with (None: never read, compiled without).
        self._used: dict[Key, dict[str, str] | None] = {}
        self._failures: dict[Key, int] = {}
        self._next_try: dict[Key, int] = {}
        self._missing_since: dict[Key, int] = {}
        # The keys never read, set with `_used`: `check` runs for every inbox batch, and
        # nearly always finds none, without taking the lock (issue 17).
        self._missing: tuple[Key, ...] = ()

    # -- compiling ---------------------------------------------------------------------

    def for_load(self) -> _Load:
        """The alias provider of one rules load; `install(load)` once its rules are in force."""
        return _Load(self)

    def install(self, load: _Load) -> None:
        now = self._now()
        with self._lock:
            self._used = dict(load.used)
            self._missing = tuple(k for k, v in self._used.items() if v is None)
            for key, value in self._used.items():
                if value is None:
                    self._missing_since.setdefault(key, now)
                else:
                    self._missing_since.pop(key, None)
            for key in set(self._missing_since) - set(self._used):
                del self._missing_since[key]

    def _has_aliases(self, source: str) -> Connector | None:
        conn = self.connectors.get(source)
        return conn if conn is not None and conn.can("value_aliases") else None

    def _resolve(self, key: Key) -> dict[str, str] | None:
        """Aliases for a rules load: the stored ones when fresh, else a live read (stored
        ones again when it fails). None: never read."""
        stored = self._stored(key)
        if stored is not None and (
            not self.live or self._now() - stored["read_at"] < self.refresh_ms
        ):
            return dict(stored["aliases"])
        return self._read(key, stored) if self.live else None

    # -- refreshing --------------------------------------------------------------------

    def refresh(self) -> bool:
        """Re-read what is due (stale, or missing and past its backoff). True when what is
        stored differs from what the rules in force were compiled with: recompile them."""
        with self._lock:
            used = dict(self._used)
        changed = False
        now = self._now()
        for key, compiled_with in used.items():
            stored = self._stored(key)
            stale = stored is None or now - stored["read_at"] >= self.refresh_ms
            if self.live and stale and now >= self._next_try.get(key, 0):
                self._read(key, stored)
                stored = self._stored(key)
            current = None if stored is None else stored["aliases"]
            if current != compiled_with:
                changed = True
        return changed

    def _read(self, key: Key, stored: dict[str, Any] | None) -> dict[str, str] | None:
        source, object_type, field_name = key
        conn = self.connectors[source]
        try:
            live = conn.value_aliases(object_type, field_name)
        except Exception as exc:  # API down or limited: the stored names, or wait
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (failures - 1))
            self._next_try[key] = self._now() + int(delay * 1000)
            log.warning(
                "aliases.unavailable",
                source=source,
                object=object_type,
                field=field_name,
                error=str(exc)[:300],
                retry_in_seconds=delay,
                using="stored" if stored is not None else "none: source waits",
            )
            return None if stored is None else dict(stored["aliases"])
        self._failures.pop(key, None)
        self._next_try.pop(key, None)
        merged = {**(stored["aliases"] if stored else {}), **live}
        self._state(source).set(self._kv_key(key), {"aliases": merged, "read_at": self._now()})
        return merged

    def _stored(self, key: Key) -> dict[str, Any] | None:
        value = self._state(key[0]).get(self._kv_key(key))
        return value if isinstance(value, dict) and "aliases" in value else None

    # -- the gate ----------------------------------------------------------------------

    def check(self, refs: Iterable[tuple[str, str]]) -> None:
        """Raise LookupsNotReady when rules on one of these (source, object type) were
        compiled without names they need."""
        missing = self._missing  # (one read of a tuple replaced whole: no lock needed)
        if not missing:
            return
        for source, object_type in set(refs):
            waiting = [k for k in missing if k[0] == source and k[1] == object_type]
            if waiting:
                due = max(self._next_try.get(k, 0) for k in waiting)
                retry_after = max(1.0, (due - self._now()) / 1000)
                raise LookupsNotReady(
                    source, object_type, [_key_name(k) for k in waiting], retry_after
                )

    def missing(self) -> dict[Key, int]:
        """Lookups never read, with since when (ms) they have been missing."""
        with self._lock:
            return {
                k: self._missing_since.get(k, self._now())
                for k, v in self._used.items()
                if v is None
            }

    def problems(self) -> list[str]:
        now = self._now()
        return [
            f"{key[0]} {key[1]}s wait: {_key_name(key)} never read "
            f"(missing for {(now - since) // 1000} s, retrying)"
            for key, since in sorted(self.missing().items())
        ]

    # -- helpers -----------------------------------------------------------------------

    def _state(self, source: str) -> KeyValue:
        return KeyValue(self.store, source, self.clock)

    @staticmethod
    def _kv_key(key: Key) -> str:
        return f"aliases:{key[1]}:{key[2]}"

    def _now(self) -> int:
        return to_ms(self.clock.now())


class _Load:
    """The loader's alias provider for one load: each lookup resolved once per load."""

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self.used: dict[Key, dict[str, str] | None] = {}

    def __call__(self, source: str, object_type: str, field_name: str) -> dict[str, str]:
        if self.lookups._has_aliases(source) is None:
            return {}
        key = (source, object_type, field_name)
        if key not in self.used:
            self.used[key] = self.lookups._resolve(key)
        return dict(self.used[key] or {})


def offline_aliases(store: Store | None, sources: Iterable[str]) -> Any:
    """The alias provider of a dry run (`simulate`, `explain`): the names production stored
    when a store exists, else what the connector knows without its API."""
    from syncd import connector as registry

    def provide(source: str, object_type: str, field_name: str) -> dict[str, str]:
        if source not in set(sources):
            return {}
        if store is not None:
            stored = KeyValue(store, source, _NoClock()).get(f"aliases:{object_type}:{field_name}")
            if isinstance(stored, dict) and isinstance(stored.get("aliases"), dict):
                return dict(stored["aliases"])
        try:
            cls = registry.load_class(source)
        except Exception:  # an unknown connector is the loader's error to report
            return {}
        return dict(cls.STATIC_VALUE_ALIASES.get((object_type, field_name), {}))

    return provide


class _NoClock:
    def now(self) -> Any:  # reads only; never called
        raise RuntimeError("no clock in a dry run")

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("no clock in a dry run")
