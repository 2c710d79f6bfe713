"""Wiring: config -> store, connectors, rules, ingest, inbox, poller, scheduler, executor.

`Engine.run_once()` is one full cycle (what `syncd run --once` does and what tests drive);
the daemon runs the same parts on their own schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from syncd import connector as registry
from syncd.alerts import queue_notice
from syncd.clock import Clock, SystemClock, from_ms, to_ms
from syncd.config import Config
from syncd.connector import Connector
from syncd.errors import ConfigError
from syncd.executor import Executor, Outcome
from syncd.inbox import InboxProcessor, InboxWriter
from syncd.ingest import Ingestor, RulesHolder
from syncd.kv import KeyValue, SecretFile
from syncd.logs import add_secrets
from syncd.logs import redact as default_redact
from syncd.lookups import Lookups
from syncd.mapping.loader import MappingError, load_rules
from syncd.mapping.rules import RuleSet
from syncd.poller import Poller
from syncd.replicas import describe
from syncd.retry import RetryPolicy
from syncd.scheduler import Scheduler
from syncd.store import actions as outbox
from syncd.store import events as history
from syncd.store import inbox as deliveries
from syncd.store.db import Store, open_store

log = structlog.get_logger("syncd.engine")
LOOKUP_ALERT_SECONDS = 60.0


def missing_secrets(config: Config) -> list[str]:
    """Secrets an enabled connector needs to run, with how to give them."""
    problems = []
    for name, settings in sorted(config.connectors.items()):
        if not settings.enabled:
            continue
        for key in registry.load_class(name).required_secrets:
            if not getattr(settings, key, None):
                problems.append(
                    f'[{name}] {key}: required to run; set it as {key}_file = "/path", '
                    f"SYNCD_{name.upper()}_{key.upper()}, or the systemd credential "
                    f"{name}_{key}"
                )
    return problems


def build_connectors(
    config: Config, clock: Clock, *, require_secrets: bool = False
) -> dict[str, Connector]:
    """Instantiate every enabled connector of the config."""
    out: dict[str, Connector] = {}
    problems = missing_secrets(config) if require_secrets else []
    for name, settings in sorted(config.connectors.items()):
        if not settings.enabled:
            continue
        try:
            out[name] = registry.load_class(name)(settings, clock=clock)
        except Exception as exc:
            problems.append(f"[{name}]: cannot start connector: {exc}")
    if problems:
        raise ConfigError(problems)
    return out


def use_rule_fields(rulesets: list[RuleSet], connectors: dict[str, Connector]) -> None:
    """Tell each connector the fields its objects must bring (what the rules read)."""
    from syncd.mapping.fields import referenced_fields

    by_source: dict[str, dict[str, set[str]]] = {}
    for rules in rulesets:
        for (source, obj), fields in referenced_fields(rules).items():
            by_source.setdefault(source, {}).setdefault(obj, set()).update(fields)
    for name, conn in connectors.items():
        conn.use_fields(by_source.get(name, {}))


def check_rules_against_config(rules: RuleSet, connectors: dict[str, Connector]) -> list[str]:
    return [
        f"mappings use connector {name!r}, but [{name}] is not configured (or disabled)"
        for name in sorted(rules.sources() - set(connectors))
    ]


def take_sqlite_lock(store_url: str) -> Any:
    """One daemon per SQLite database: an exclusive lock on `<db>.lock`, held while running.

    Holding it proves no other syncd process is working on this database, so leases left by
    an earlier process are stale and can be released at once (PostgreSQL replicas instead
    wait for leases to expire)."""
    import fcntl

    path = store_url.split("///", 1)[-1] + ".lock"
    handle = open(path, "a")  # noqa: SIM115 - held for the engine's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            [
                f"another syncd process is running on {path[:-5]} "
                "(stop it first; one daemon per SQLite database)"
            ]
        ) from None
    return handle


def release_leases(store: Store) -> int:
    return outbox.release_all_leases(store)


@dataclass
class CycleReport:
    inbox: int = 0
    polled: dict[str, Any] = field(default_factory=dict)
    scheduled: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        config: Config,
        clock: Clock | None = None,
        *,
        connectors: dict[str, Connector] | None = None,
        store: Store | None = None,
        redact: Any = None,
        on_dead: Any = None,
        exclusive: bool = False,
        require_secrets: bool = False,
        live_lookups: bool = True,
    ) -> None:
        """`live_lookups=False`: value names (stage labels) only from the store, never read
        from an API (the read-only commands: `syncd status`, `prune`)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or open_store(config.store_url, synchronous=config.store.synchronous)
        self._lock = None
        if exclusive and self.store.is_sqlite:
            self._lock = take_sqlite_lock(config.store_url)
            released = release_leases(self.store)
            if released:
                log.info(
                    "leases.released",
                    actions=released,
                    reason="previous process ended; actions are looked up before retrying",
                )
        self.connectors = (
            connectors
            if connectors is not None
            else build_connectors(config, self.clock, require_secrets=require_secrets)
        )
        self.redact = redact or default_redact  # configured secrets and token shapes
        add_secrets(config.secret_values())
        for name, conn in self.connectors.items():
            add_secrets(conn.secret_values())
            conn.attach(
                KeyValue(self.store, name, self.clock),
                SecretFile(config.state_dir / f"{name}-secrets.json"),
            )
        self.lookups = Lookups(
            self.store,
            self.connectors,
            self.clock,
            config.syncd.lookup_refresh_seconds,
            live=live_lookups,
        )
        self.rules = RulesHolder(self.load_rules())
        use_rule_fields([self.rules.current], self.connectors)
        self.ingestor = Ingestor(
            self.store,
            self.rules,
            self.clock,
            frozenset(name for name, conn in self.connectors.items() if not conn.golive_baseline),
            gate=self.lookups.check,
        )
        ex = config.executor
        self.executor = Executor(
            self.store,
            self.connectors,
            self.clock,
            RetryPolicy(ex.max_attempts, ex.backoff_base_seconds, ex.backoff_max_seconds),
            lease_seconds=ex.lease_seconds,
            redact=self.redact,
            on_dead=on_dead,
            lookup_window_seconds=ex.lookup_window_seconds,
            max_in_flight=ex.max_in_flight or max(1, -(-ex.workers // 2)),
        )
        self.inbox = InboxProcessor(
            self.store,
            self.connectors,
            self.ingestor,
            self.clock,
            RetryPolicy(config.inbox.max_attempts, ex.backoff_base_seconds, ex.backoff_max_seconds),
            redact=self.redact,
        )
        self.poller = Poller(self.store, self.connectors, self.ingestor, self.clock)
        self.scheduler = Scheduler(
            self.store,
            self.rules,
            self.connectors,
            self.clock,
            config.scheduler.grace_hours,
            golive=self.ingestor.golive,
        )
        self._writer: InboxWriter | None = None

    def load_rules(self) -> RuleSet:
        """Load and check the mapping files; raises MappingError / ConfigError. Value names
        (stage labels) come from the store or the API; when never read, the rules that need
        them are compiled without, and their source waits (see syncd.lookups)."""
        load = self.lookups.for_load()
        rules = load_rules(self.config.mapping_paths, aliases=load, vars=self.config.syncd.vars)
        problems = check_rules_against_config(rules, self.connectors)
        if problems:
            raise ConfigError(problems)
        self.lookups.install(load)
        return rules

    def install_rules(self, rules: RuleSet) -> None:
        """Make loaded rules the current ones. The connectors fetch what both the old and
        the new rules read while the swap happens (a batch in flight may plan with either),
        then what the new ones read: a reload refused after loading (no rules at all)
        leaves the old rules with everything they read."""
        use_rule_fields([self.rules.current, rules], self.connectors)
        self.rules.current = rules
        use_rule_fields([rules], self.connectors)

    def refresh_lookups(self) -> bool:
        """Re-read due value names; recompile the rules when the stored names changed (a
        renamed stage, names read at last). True when the rules were recompiled."""
        changed = self.lookups.refresh()
        self._alert_waiting()
        if not changed:
            return False
        try:
            rules = self.reload_rules()
        except (MappingError, ConfigError) as exc:
            log.error(
                "aliases.recompile_failed",
                error=str(exc)[:2000],
                kept_rules=len(self.rules.current.rules),
            )
            return False
        log.info(
            "aliases.recompiled",
            rules=len(rules.rules),
            waiting=[".".join(k) for k in self.lookups.missing()],
        )
        return True

    def reload_rules(self) -> RuleSet:
        """Swap in freshly loaded rules; on any error the old rules stay and it raises."""
        rules = self.load_rules()
        self.install_rules(rules)
        return rules

    def failing_rules(self) -> list[dict[str, Any]]:
        """Rules with dead actions within the last alert period (see syncd.alerts)."""
        from syncd.alerts import failing_rules

        return failing_rules(self, int(self.config.alerts.period_minutes * 60_000))

    def alert_failures(self) -> int:
        """Alert mails for actions planned dead (template, condition) and due digests."""
        from syncd.alerts import sweep

        return sweep(self)

    def _alert_waiting(self) -> None:
        """One alert mail (per alert period) when a source has waited for its value names
        longer than LOOKUP_ALERT_SECONDS: a short 429 at start is not worth a mail."""
        now = to_ms(self.clock.now())
        late = {
            k: since
            for k, since in self.lookups.missing().items()
            if now - since >= LOOKUP_ALERT_SECONDS * 1000
        }
        if not late:
            return
        lines = [f"- {problem}" for problem in self.lookups.problems()]
        queue_notice(
            self,
            "lookups",
            "[syncd] rules cannot be evaluated: value names not readable",
            "syncd cannot read value names its rules use (e.g. HubSpot stage labels), and has "
            "never read them, so it cannot tell which changes match:\n"
            + "\n".join(lines)
            + "\n\nThese changes are not ingested (nothing is lost: polls keep their "
            "cursor, webhooks stay in the inbox). syncd retries with backoff and goes on by "
            "itself once the read succeeds. Check the credentials and the API's status.\n",
        )

    @property
    def writer(self) -> InboxWriter:
        if self._writer is None:
            self._writer = InboxWriter(self.store)
        return self._writer

    def go_live(self) -> dict[str, int]:
        """Record the go-live instant of every enabled source that has none (the first
        start); history before it is baselined, not acted on (see syncd.golive)."""
        out = {}
        for name, conn in sorted(self.connectors.items()):
            known = self.ingestor.golive.instant(name)
            out[name] = self.ingestor.golive.ensure(name)
            if known is None and conn.golive_baseline:
                log.info(
                    "source.went_live",
                    source=name,
                    at=from_ms(out[name]).isoformat(),
                    note="what exists now is baselined; rules fire on later changes",
                )
        return out

    def run_once(self) -> CycleReport:
        """Inbox, one poll of every source, due time triggers, every action due now."""
        self.go_live()
        report = CycleReport()
        self.refresh_lookups()
        report.inbox = self.inbox.drain()
        report.polled = {f"{k[0]}.{k[1]}": v for k, v in self.poller.poll_all().items()}
        report.inbox += self.inbox.drain()
        report.scheduled = self.scheduler.tick()
        self.alert_failures()
        report.outcomes = self.executor.drain(limit=self.config.executor.batch_size)
        return report

    def prune(self) -> dict[str, int]:
        """Drop audit history older than the retention period (finished work only)."""
        cutoff = to_ms(self.clock.now()) - self.config.store.retention_days * 86_400_000
        with self.store.tx() as conn:
            ev = history.prune_events(conn, cutoff)
            tr = history.prune_traces(conn, cutoff)
            outbox.prune_attempts(conn, cutoff)
            ac = outbox.prune_finished_actions(conn, cutoff)
            ib = deliveries.prune_done_deliveries(conn, cutoff)
        return {"events": ev, "actions": ac, "inbox": ib, "traces": tr}

    def status(self) -> dict[str, Any]:
        now = to_ms(self.clock.now())
        by_status, due = outbox.count_by_status(self.store, now)
        inbox_counts = deliveries.count_by_status(self.store)
        pending_inbox = inbox_counts.get("pending", 0)
        failed_inbox = inbox_counts.get("failed", 0)
        polls = [
            {
                "source": c.source,
                "stream": c.stream,
                "cursor": c.value,
                "last_poll_seconds_ago": round((now - c.updated_at) / 1000, 1),
            }
            for c in self.poller.last_polls()
        ]
        went_live = self.ingestor.golive.all()
        return {
            "actions": {
                s: by_status.get(s, 0)
                for s in ("pending", "in_flight", "done", "dead", "cancelled")
            },
            "queue_depth": (by_status.get("pending", 0) + by_status.get("in_flight", 0)),
            "due_now": due,
            "dead": by_status.get("dead", 0),
            "inbox": {"pending": pending_inbox, "failed": failed_inbox},
            "polls": polls,
            "rules": len(self.rules.current.rules),
            "failing": self.failing_rules(),
            "went_live": {
                name: from_ms(went_live[name]).isoformat() if name in went_live else None
                # A source no longer configured keeps its line; an action-only connector
                # (email), recorded by `go_live` with the rest, has none.
                for name in sorted(self._sources() | (set(went_live) - set(self.connectors)))
            },
            **describe(self.store, now),
        }

    def _sources(self) -> set[str]:
        """The connectors that observe changes (poll or receive webhooks): the ones that go
        live. An action-only connector (email) has nothing to baseline."""
        return {
            name
            for name, conn in self.connectors.items()
            if conn.can("poll") or conn.can("parse_webhook")
        }

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for conn in self.connectors.values():
            try:
                conn.close()
            except Exception:
                log.warning("connector.close_failed", source=conn.name)
        self.store.dispose()
        if self._lock is not None:
            self._lock.close()
