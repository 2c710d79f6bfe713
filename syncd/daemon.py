"""`syncd run`: the long-running daemon.

One process: the webhook HTTP server (uvicorn, on the main thread's event loop), and
threads for the inbox processor, a poll loop per source, the scheduler and the executor
workers. Blocking client libraries run on those threads, so a slow API never stalls the
webhook answers.

Signals: SIGTERM/SIGINT stop intake, let in-flight actions finish within the stop timeout,
exit 0 (anything unfinished is resumed at the next start through the idempotent path).
SIGHUP reloads the mapping files; a file that fails `syncd check` is rejected with its
errors logged, and the last good rules stay in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import uvicorn
from sqlalchemy import text

from syncd import sdnotify
from syncd.alerts import make_alerter, queue_notice
from syncd.clock import to_ms
from syncd.config import Config, load_config
from syncd.console.server import console_server_config
from syncd.engine import Engine
from syncd.errors import ConfigError
from syncd.executor import Executor
from syncd.http_server import uvicorn_config
from syncd.leadership import Leadership
from syncd.logs import add_secrets, configure_logging, in_background, redact
from syncd.lookups import LookupsNotReady
from syncd.mapping.loader import MappingError
from syncd.memory import freeze_long_lived, limit_malloc_arenas, refreeze, release_free_memory
from syncd.metrics import RULE_FAILURES
from syncd.osthreads import start_thread
from syncd.permissions import check_file_permissions
from syncd.poller import poll_job
from syncd.replicas import ActionListener, heartbeat, leave
from syncd.scheduler import SCHEDULER_JOB
from syncd.shared_windows import share_governors
from syncd.status_metrics import refresh_governor_metrics, refresh_store_metrics
from syncd.store.db import open_store
from syncd.webapp import build_app

log = structlog.get_logger("syncd.daemon")
STOP_TIMEOUT_SECONDS = 30.0
HOUSEKEEPING_SECONDS = 6 * 3600.0
# Actions an executor thread claims at a time (and the inbox hands an idle one). Each claim is
# a write transaction that also records the last batch's results: 25 rather than 10 takes
# 0.04 instead of 0.10 write transactions per action (benchmarks/executor_path.py, issue
# 17). A connector's actions in flight stay bounded by its max_in_flight workers; a claim's
# actions are leased (5 minutes, extended before any wait for the API's budget).
EXECUTOR_CLAIM = 25
INBOX_CLAIM = 100
# A batch of at least this many deliveries, yet short of INBOX_CLAIM: webhooks arrive faster
# than one at a time, and the inbox has caught up with them. It waits INBOX_LINGER_SECONDS
# before its next claim, so that batch is larger: a fetch costs requests per batch, not per
# webhook (issue 17 counts HubSpot requests per 1,000 webhooks). An idle daemon's lone
# webhook never waits.
INBOX_LINGER_FROM = 10
INBOX_LINGER_SECONDS = 0.03
ALERT_SWEEP_SECONDS = 5.0  # failed renders/conditions to the alert inbox; digests
LOOKUP_TICK_SECONDS = 1.0  # cheap: reads the store; the API only when due (with backoff)


def _jittered(every: float) -> Callable[[], float]:
    """`every` seconds, give or take 10%, drawn again for each wait."""
    return lambda: every * random.uniform(0.9, 1.1)


class HousekeepingFailed(Exception):
    """A connector's periodic upkeep (such as refreshing Airtable's webhooks before they
    expire) failed; left alone it turns into lost webhooks days later."""


class WakeOne:
    """A wake-up for threads that wait for the same work: `set` lets one waiting thread go
    (or the next one to wait, when none waits now); `set_all` lets them all go (stop).
    Used like an Event by Daemon._loop: `wait(timeout)`, then `clear()` (nothing to do)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0  # wakes not taken yet
        self._waiting = 0
        self._all = False
        self._handed: deque[Any] = deque()  # work handed over, for the next thread to take

    def idle(self) -> bool:
        """A thread waits with no wake pending for it (a hint: it may time out meanwhile)."""
        return self._waiting > self._pending

    def hand(self, work: Any) -> None:
        """Wake one thread, with `work` for the first thread to `take` it; each piece of
        work has a wake of its own, so none is left waiting for a poll tick."""
        with self._cond:
            self._handed.append(work)
            self._pending += 1
            self._cond.notify()

    def take(self) -> Any | None:
        with self._cond:
            return self._handed.popleft() if self._handed else None

    def set(self) -> None:
        with self._cond:
            # One pending wake per waiting thread at most: wakes while every thread is
            # busy collapse into one, as an Event's would.
            self._pending = min(self._pending + 1, max(1, self._waiting))
            self._cond.notify()

    def set_all(self) -> None:
        with self._cond:
            self._all = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._pending > 0 or self._all, timeout)
            finally:
                self._waiting -= 1
            if self._pending > 0:
                self._pending -= 1
                return True
            return self._all

    def clear(self) -> None:
        """Nothing to clear: `wait` took its wake."""


class ExecutorHandoff:
    """Actions the inbox plans go straight to an idle executor thread: claimed inside the
    transaction that planned them, handed over in memory once it commits. No wake-up has to
    find them and no claim transaction of their own stands between the webhook and the API.
    The store stays the truth: the claim is the usual lease (in flight, attempt counted), so
    a crash before they are performed leaves them to the usual recovery (released at the
    next start, looked up before a repeat)."""

    def __init__(self, executor: Executor, wake: WakeOne, limit: int) -> None:
        self.executor = executor
        self.wake = wake
        self.limit = limit
        self._round = threading.local()  # per inbox thread: what its current round did

    def begin_round(self) -> None:
        self._round.handed = self._round.missed = False

    def needs_wake(self) -> bool:
        """The round's actions were not all handed over: wake a thread to claim them."""
        return getattr(self._round, "missed", True) or not getattr(self._round, "handed", False)

    def claim(self, conn: Any) -> list[Any]:
        rows = self.executor.claim_in(conn, self.limit) if self.wake.idle() else []
        if rows:
            self._round.handed = True
        else:
            self._round.missed = True
        return rows

    def give(self, rows: list[Any]) -> None:
        self.wake.hand(rows)
        if len(rows) >= self.limit:  # there may be more: another thread claims them
            self.wake.set()

    def drop(self, rows: list[Any]) -> None:
        self.executor.unclaim(rows)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = threading.Event()
        self.wake_inbox = threading.Event()
        # One executor thread per wake: an Event would wake them all for one action, and
        # all but one would claim nothing, competing for the store's write lock and the
        # GIL with the one that has work. One that claims a full batch wakes the next.
        self.wake_executor = WakeOne()
        # Loops whose last run raised: name -> (errors in a row, the last error).
        self.loop_failures: dict[str, tuple[int, str]] = {}
        # A store to migrate is migrated by a child process: alembic stays out of the
        # daemon's memory (issue 17).
        store = open_store(
            config.store_url, synchronous=config.store.synchronous, migrate_in_child=True
        )
        self.engine = Engine(
            config, store=store, redact=redact, exclusive=True, require_secrets=True
        )
        self.engine.executor.on_dead = make_alerter(self.engine)
        self.engine.executor.on_full_claim = self.wake_executor.set
        self.handoff: ExecutorHandoff | None = None
        if self.engine.store.is_sqlite:  # PostgreSQL: shared governors read the store in a
            # transaction of their own before the claim's (see Executor._governor_waits)
            self.handoff = ExecutorHandoff(self.engine.executor, self.wake_executor, EXECUTOR_CLAIM)
            self.engine.inbox.handoff = self.handoff
        for conn in self.engine.connectors.values():
            add_secrets(conn.secret_values())
            if not self.engine.store.is_sqlite:  # replicas: one budget for all of them
                share_governors(self.engine.store, conn.governors())
        self.threads: list[threading.Thread] = []
        self.server: _Server | None = None
        self.console: _Server | None = None
        self.console_config = console_server_config(config, self.engine)
        self.replica_id = self.engine.executor.owner
        self.started_at = to_ms(self.engine.clock.now())
        self.leadership = Leadership(self.engine.store, self.replica_id, self.engine.clock)

    # -- background loops -------------------------------------------------------------

    def _loop(
        self,
        name: str,
        interval: Callable[[], float],
        body: Callable[[], Any],
        wake: threading.Event | WakeOne | None = None,
    ) -> threading.Thread:
        def run() -> None:
            while not self.stop.is_set():
                try:
                    body()
                    self.loop_failures.pop(name, None)
                except Exception as exc:
                    log.exception("loop.error", loop=name)
                    self._loop_failed(name, exc)
                if wake is not None:
                    wake.wait(interval())
                    wake.clear()
                else:
                    self.stop.wait(interval())

        thread = start_thread(run, name)
        self.threads.append(thread)
        return thread

    def _loop_failed(self, name: str, exc: Exception) -> None:
        """A loop that raises is reported by /readyz and `status` until it succeeds again,
        and alerted once per alert period (see syncd.alerts.queue_notice)."""
        count = self.loop_failures.get(name, (0, ""))[0] + 1
        error = self.engine.redact(f"{type(exc).__name__}: {exc}")[:500]
        self.loop_failures[name] = (count, error)
        RULE_FAILURES.labels(f"loop:{name}", "loop").inc()
        try:
            queue_notice(
                self.engine,
                f"loop:{name}",
                f"[syncd] the {name} loop is failing",
                f"The {name} loop of syncd raised {count} time(s) in a row; it retries on "
                f"its own, and /readyz reports it until it succeeds.\n\nError: {error}\n\n"
                "The log has the traceback (`journalctl -u syncd | grep loop.error`). Fix the "
                "cause it names (a rule: `syncd check`, then reload; a source: its "
                "credentials or the API's status).\n",
            )
        except Exception:  # the alert is best effort; the readiness report stays
            log.exception("loop.alert_failed", loop=name)

    def _executor_body(self) -> None:
        handed = self.wake_executor.take()
        if handed is not None:  # claimed by the inbox for this thread: no claim of its own
            self.engine.executor.perform_claimed(handed)
            return  # the rest due, if any, comes with a wake of its own (ExecutorHandoff.give)
        # A few at a time: enough to batch (Airtable rows), few enough to share the work.
        self.engine.executor.run_while_due(EXECUTOR_CLAIM, self.stop.is_set)

    def _inbox_body(self) -> None:
        # Batch after batch while deliveries are due: a backlog (after an outage, a restart)
        # drains at once, not one batch per wake-up. A batch short of the limit took all that
        # was due: no second (empty) claim, whose write transaction would compete with the
        # executor thread just woken for the store's lock. A delivery stored meanwhile has
        # set the wake, so the loop's wait returns at once.
        while not self.stop.is_set():
            if self.handoff is not None:
                self.handoff.begin_round()
            claimed = self.engine.inbox.process_due(INBOX_CLAIM)
            if claimed and (self.handoff is None or self.handoff.needs_wake()):
                self.wake_executor.set()
            if claimed < INBOX_CLAIM:
                if claimed >= INBOX_LINGER_FROM:
                    self.stop.wait(INBOX_LINGER_SECONDS)
                return

    def _poll_body(self, source: str, stream: str) -> None:
        fence = self.leadership.hold(poll_job(source, stream))
        if fence is not None:  # else another replica holds this poller
            try:
                self.engine.poller.poll_stream(source, stream, fence)
            except LookupsNotReady as exc:  # said by /readyz and the alert; cursor kept
                log.info("poll.waiting", source=source, stream=stream, reason=str(exc))

    def _scheduler_body(self) -> None:
        fence = self.leadership.hold(SCHEDULER_JOB)
        if fence is not None:
            self.engine.scheduler.tick(fence)

    def _housekeeping_body(self) -> None:
        failed = []
        for name, conn in self.engine.connectors.items():
            if self.leadership.hold(f"housekeeping:{name}") is None:
                continue  # another replica does it
            try:
                conn.housekeeping()
            except Exception as exc:  # the others still get theirs
                log.exception("housekeeping.failed", source=name)
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        if failed:  # the loop reports it: /readyz, status, one alert per period
            raise HousekeepingFailed("; ".join(failed))

    def _heartbeat_body(self) -> None:
        release_free_memory()  # what a busy spell freed goes back, not held at its peak
        heartbeat(self.engine.store, self.replica_id, self.engine.clock, self.started_at)

    def start_loops(self) -> None:
        cfg = self.config
        self._loop("heartbeat", lambda: 10.0, self._heartbeat_body)
        for i in range(cfg.inbox.workers):
            self._loop(f"inbox-{i}", lambda: 1.0, self._inbox_body, self.wake_inbox)
        if not cfg.inbox.workers:
            log.warning(
                "inbox.processing_off",
                detail="[inbox] workers = 0: webhooks are stored here and processed by "
                "another replica (or after a restart with workers >= 1)",
            )
        for source, stream in self.engine.poller.streams():
            every = self.engine.connectors[source].settings.poll_interval_seconds
            self._loop(
                f"poll-{source}-{stream}",
                _jittered(every),  # jitter: no thundering herd
                functools.partial(self._poll_body, source, stream),
            )
        self._loop("scheduler", lambda: cfg.scheduler.tick_seconds, self._scheduler_body)
        if not self.engine.store.is_sqlite:
            listener = ActionListener(self.engine.store, self._wake_all, self.stop)
            self.threads.append(start_thread(listener.run, "listener"))
        for i in range(cfg.executor.workers):
            self._loop(
                f"executor-{i}",
                lambda: self.engine.executor.idle_seconds(1.0),
                self._executor_body,
                self.wake_executor,
            )
        self._loop("lookups", lambda: LOOKUP_TICK_SECONDS, self.engine.refresh_lookups)
        self._loop("alerts", lambda: ALERT_SWEEP_SECONDS, self.engine.alert_failures)
        self._loop("prune", lambda: 3600.0, self.engine.prune)
        self._loop("housekeeping", lambda: HOUSEKEEPING_SECONDS, self._housekeeping_body)

    # -- health -----------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        problems = []
        try:
            with self.engine.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            problems.append(f"store unreachable: {type(exc).__name__}")
        if not self.engine.rules.current.rules:
            problems.append("no rules loaded")
        problems += self.engine.lookups.problems()
        try:
            problems += [
                f"rule {f['rule']} failing: {f['failures']} {f['kind']} failure(s) "
                f"in the last alert period ({f['see']})"
                for f in self.engine.failing_rules()
            ]
        except Exception as exc:  # the store check above says why
            log.warning("readiness.failing_rules_unknown", error=type(exc).__name__)
        problems += [
            f"loop {name} failing: {count} error(s) in a row; last: {error}"
            for name, (count, error) in sorted(self.loop_failures.items())
        ]
        dead = [t.name for t in self.threads if not t.is_alive()]
        if dead:
            problems.append(f"threads stopped: {', '.join(dead)}")
        if not problems:
            problems += self._stale_polls()
        return {
            "ready": not problems,
            "problems": problems,
            "rules": len(self.engine.rules.current.rules),
        }

    def _stale_polls(self) -> list[str]:
        """Sources not polled successfully for three intervals (and a minute): the safety
        net is down, though webhooks may still flow. By any replica: the cursor is shared."""
        now = to_ms(self.engine.clock.now())
        last = {(c.source, c.stream): c.updated_at for c in self.engine.poller.last_polls()}
        out = []
        for source, stream in self.engine.poller.streams():
            interval = self.engine.connectors[source].settings.poll_interval_seconds
            allowed_ms = int((3 * interval + 60) * 1000)
            since = last.get((source, stream), self.started_at)
            if now - since > allowed_ms:
                out.append(f"{source}.{stream} not polled for {(now - since) // 1000} s")
        return out

    def healthy(self) -> bool:
        return all(t.is_alive() for t in self.threads)

    def refresh_metrics(self) -> None:
        refresh_store_metrics(self.engine)
        refresh_governor_metrics()

    # -- signals ----------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: re-read the config file and the mapping files. Nothing changes unless both
        pass the checks of `syncd check`; the mapping files, their folders, the log level
        and the alert settings take effect at once. Connector, store and HTTP settings need
        a restart, and the log says so."""
        sdnotify.reloading()
        old_config = self.engine.config
        try:
            config = load_config(old_config.path) if old_config.path else old_config
            _check_reload_permissions(config)  # the same file-mode checks as at start
            self.engine.config = config
            rules = self.engine.load_rules()
            if not rules.rules and not config.syncd.allow_empty_rules:
                raise ConfigError(
                    [
                        "the mapping files give no rules (deleted or emptied?): keeping the "
                        f"previous {len(self.engine.rules.current.rules)}; set [syncd] "
                        "allow_empty_rules = true to run without rules on purpose"
                    ]
                )
            self.engine.install_rules(rules)
        except (MappingError, ConfigError) as exc:
            self.engine.config = old_config
            problems = getattr(exc, "problems", [str(exc)])
            log.error(
                "reload.rejected",
                problems=[str(p) for p in problems],
                kept_rules=len(self.engine.rules.current.rules),
            )
            sdnotify.status("reload rejected; previous rules in force")
            sdnotify.ready()
            return
        self.config = config
        configure_logging(
            config.syncd.log_level,
            json=config.syncd.log_json,
            secrets=config.secret_values(),
            background=in_background(),  # as `syncd run` set it up
        )
        self.engine.executor.on_dead = make_alerter(self.engine)
        needs_restart = [
            name
            for name in ("store", "http", "executor", "inbox", "console")
            if getattr(config, name) != getattr(old_config, name)
        ]
        if config.connectors != old_config.connectors:
            needs_restart.append("connector settings")
        if needs_restart:
            log.warning("reload.restart_needed", changed=needs_restart)
        refreeze()  # the replaced rules go back to the collector; the new ones are frozen
        log.info("reload.ok", rules=len(rules.rules))
        sdnotify.status(f"rules reloaded: {len(rules.rules)}")
        sdnotify.ready()

    def connect_intake(self) -> None:
        # The intake writer wakes the inbox thread itself, right after its commit: not via
        # the event loop (a hop through call_soon_threadsafe and the loop's turn).
        self.engine.writer.on_stored = self.wake_inbox.set
        if self.engine.store.is_sqlite and self.config.inbox.workers == 1:
            # The one thread claiming from this inbox: it may take deliveries as stored, with
            # no claim, when it is idle (InboxProcessor.offer).
            self.engine.inbox.accept_handed = True
            self.engine.inbox.wake = self.wake_inbox.set  # for a lone delivery's early fetch
            self.engine.writer.handoff = self.engine.inbox

    def _wake_all(self) -> None:
        self.wake_executor.set()

    def request_stop(self) -> None:
        log.info("daemon.stopping")
        sdnotify.stopping()
        self.stop.set()
        self.wake_inbox.set()
        self.wake_executor.set_all()
        if self.server is not None:
            self.server.should_exit = True
        if self.console is not None:
            self.console.should_exit = True

    async def _watchdog(self) -> None:
        period = sdnotify.watchdog_interval()
        if not period:
            return
        while not self.stop.is_set():
            if self.healthy():
                sdnotify.watchdog()
            await asyncio.sleep(period)

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, self.reload))
        self.connect_intake()
        app = build_app(
            connectors=self.engine.connectors,
            writer=self.engine.writer,
            clock=self.engine.clock,
            max_body_bytes=self.config.http.max_body_bytes,
            public_url=self.config.http.public_url,
            readiness=self.readiness,
            refresh_metrics=self.refresh_metrics,
            body_timeout_seconds=self.config.http.body_timeout_seconds,
        )
        server_config = uvicorn_config(app, self.config.http, timeout_graceful_shutdown=10)
        self.server = _Server(server_config)
        self.engine.go_live()  # before the first webhook or poll: history stays history
        frozen = freeze_long_lived()  # before the threads start their work
        log.debug("daemon.gc_frozen", objects=frozen)
        self.start_loops()
        watchdog = asyncio.create_task(self._watchdog())
        serving = asyncio.create_task(self.server.serve())
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.05)
        if serving.done():  # could not bind the port, for example
            self.stop.set()
            await serving
            return 1
        port = self.server.servers[0].sockets[0].getsockname()[1] if self.server.servers else 0
        console = self._start_console(self.console_config)
        log.info(
            "daemon.ready",
            port=port,
            rules=len(self.engine.rules.current.rules),
            sources=sorted(self.engine.connectors),
        )
        sdnotify.ready()
        sdnotify.status(f"serving on port {port}")
        await serving
        self.stop.set()
        if self.console is not None:
            self.console.should_exit = True
        if console is not None:
            await console
        watchdog.cancel()
        await asyncio.to_thread(self._join, STOP_TIMEOUT_SECONDS)
        return 0

    def _start_console(self, config: uvicorn.Config | None) -> asyncio.Task[None] | None:
        """The console's listener. Bound here, not by uvicorn (which exits the process when
        it cannot bind): a console that cannot listen is logged and left off, and the
        webhooks and the work go on without it."""
        if config is None:
            return None
        try:
            sock = socket.create_server((config.host, config.port), reuse_port=False)
        except OSError as exc:
            listen, reason = self.config.console.listen, exc.strerror or str(exc)
            log.error("console.start_failed", listen=listen, reason=reason)
            try:  # the alert inbox hears of it too (once per alert period)
                queue_notice(
                    self.engine,
                    "console",
                    "[syncd] the console is not running",
                    f"syncd could not listen on {listen} for its console ({reason}); "
                    "webhooks and actions go on. Free the port or change [console] listen, "
                    "then restart syncd.\n",
                )
            except Exception:
                log.exception("console.alert_failed")
            return None
        self.console = _Server(config)
        return asyncio.create_task(self.console.serve(sockets=[sock]))

    def _join(self, timeout: float) -> None:
        for conn in self.engine.connectors.values():
            for governor in conn.governors():  # wake requests waiting for their turn
                governor.close()
        for thread in self.threads:
            thread.join(timeout=max(0.1, timeout / max(1, len(self.threads))))
        self.leadership.release_all()
        try:
            leave(self.engine.store, self.replica_id)
        except Exception:
            log.warning("replica.leave_failed")
        self.engine.close()
        log.info("daemon.stopped")


def _check_reload_permissions(config: Config) -> None:
    """Raise ConfigError when a file mode would make the start refuse (see permissions.py)."""
    if config.path is None:
        return
    problems = check_file_permissions(config.path, config.mapping_paths, config.secret_files)
    if problems:
        raise ConfigError(problems)


def run_daemon(config: Config) -> int:
    # Background threads (ingest, actions) hold the GIL in 5 ms slices by default; shorter
    # slices let the event loop answer webhooks promptly while they are busy.
    sys.setswitchinterval(0.001)
    limit_malloc_arenas()
    if config.path is not None:
        problems = check_file_permissions(config.path, config.mapping_paths, config.secret_files)
        if problems:
            for problem in problems:
                log.error("daemon.unsafe_permissions", problem=problem)
            return 2
    try:
        daemon = Daemon(config)
    except (ConfigError, MappingError) as exc:
        log.error("daemon.start_failed", error=str(exc))
        return 2
    return asyncio.run(daemon.serve())
