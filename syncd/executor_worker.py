"""The executor process's side (`python -m syncd.executor_worker`, started by the daemon).

It performs due actions on `[executor] workers` threads, as the daemon's own executor
threads would, and tells the daemon what a person must hear of: see
syncd.executor_process for the whole arrangement.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

import structlog

from syncd.clock import Clock, SystemClock
from syncd.config import Config
from syncd.engine import attach_state, build_connectors, build_executor
from syncd.executor import EXECUTOR_CLAIM, Executor
from syncd.logs import add_secrets, configure_logging, redact
from syncd.memory import limit_malloc_arenas
from syncd.metrics import ACTIONS_FINISHED
from syncd.osthreads import start_thread
from syncd.store.actions import ActionRow
from syncd.store.db import open_store
from syncd.wake import WakeOne
from syncd.windows_rpc import WindowsClient, share_with_daemon

log = structlog.get_logger("syncd.executor_worker")

REPORT_SECONDS = 1.0  # how often the counts of finished actions go to the daemon
STOP_SECONDS = 25.0  # for the actions in hand at a stop (the daemon kills at 30)


class ExecutorWorker:
    def __init__(
        self,
        config: Config,
        control: Connection,
        windows: socket.socket,
        wake_socket: socket.socket,
        clock: Clock,
    ) -> None:
        self.config = config
        self.control = control
        self.windows = WindowsClient(windows)
        self.wake_socket = wake_socket
        self.clock = clock
        self.stop = threading.Event()
        self.wake = WakeOne()
        self._send_lock = threading.Lock()
        self.executor: Executor | None = None

    def run(self) -> int:
        config = self.config
        configure_logging(
            config.syncd.log_level, json=config.syncd.log_json, secrets=config.secret_values()
        )
        sys.setswitchinterval(0.001)  # as the daemon: short GIL slices for prompt wakes
        limit_malloc_arenas()
        # The daemon stops this process (SIGTERM) and reloads itself: a Ctrl-C or a hang-up
        # sent to the terminal's whole process group is the daemon's to act on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # SIGTERM is taken by the main thread with sigwait, not by a handler: a handler runs
        # between any two bytecodes of the main thread, and one that sets an Event while the
        # main thread is inside Event.set deadlocks on the Event's lock. Blocked here, it
        # stays blocked in every thread started from now on.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        store = open_store(config.store_url, migrate=False, synchronous=config.store.synchronous)
        store.share_writes_across_processes()
        connectors = build_connectors(config, self.clock, require_secrets=True)
        add_secrets(config.secret_values())
        attach_state(config, store, self.clock, connectors)
        governors = [g for conn in connectors.values() for g in conn.governors()]
        share_with_daemon(self.windows, governors)
        executor = self.executor = build_executor(
            config, store, connectors, self.clock, redact, on_dead=self._report_dead
        )
        executor.on_full_claim = self.wake.set
        for conn in connectors.values():
            conn.prepare_to_act()
        threads = [
            start_thread(functools.partial(self._executor_loop, f"executor-{i}"), f"executor-{i}")
            for i in range(config.executor.workers)
        ]
        start_thread(self._read_wakes, "wakes")
        reporter = start_thread(self._report_counts, "reports")
        self._send(("ready",))
        log.info("executor_worker.ready", workers=len(threads))
        signal.sigwait({signal.SIGTERM})  # the daemon's stop, its death, or its socket's end
        self.request_stop()
        log.info("executor_worker.stopping")
        for thread in threads:
            thread.join(timeout=STOP_SECONDS / max(1, len(threads)))
        for governor in governors:  # wake requests still waiting for their turn
            governor.close()
        reporter.join(timeout=2)
        for conn in connectors.values():
            with contextlib.suppress(Exception):
                conn.close()
        store.dispose()
        log.info("executor_worker.stopped")
        return 0

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set_all()

    # -- loops ----------------------------------------------------------------------------

    def _executor_loop(self, name: str) -> None:
        assert self.executor is not None
        failing = False
        while not self.stop.is_set():
            try:
                self.executor.run_while_due(EXECUTOR_CLAIM, self.stop.is_set)
                if failing:
                    self._send(("loop", name, None))
                    failing = False
            except Exception as exc:
                log.exception("loop.error", loop=name)
                failing = True
                self._send(("loop", name, redact(f"{type(exc).__name__}: {exc}")[:500]))
            self.wake.wait(self.executor.idle_seconds(1.0))

    def _read_wakes(self) -> None:
        """A byte per wake from the daemon; the socket's end is the daemon's end."""
        workers = self.config.executor.workers
        while True:
            try:
                data = self.wake_socket.recv(4096)
            except OSError:
                data = b""
            if not data:
                log.warning("executor_worker.daemon_gone")
                os.kill(os.getpid(), signal.SIGTERM)  # taken by the main thread (see run)
                return
            for _ in range(min(len(data), workers)):
                self.wake.set()

    def _report_counts(self) -> None:
        last: dict[tuple[str, ...], float] = {}
        while True:
            stopping = self.stop.wait(REPORT_SECONDS)
            totals = finished_totals()
            if totals != last:
                self._send(("counts", totals))
                last = totals
            if stopping:
                return

    # -- to the daemon --------------------------------------------------------------------

    def _report_dead(self, row: ActionRow, reason: str) -> None:
        self._send(("dead", row, reason))

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self.control.send(message)
        except OSError:  # the daemon is gone: the wake socket's end stops this process
            log.warning("executor_worker.report_lost", kind=message[0])


def finished_totals() -> dict[tuple[str, ...], float]:
    """This process's counts of finished actions, by (connector, outcome)."""
    out: dict[tuple[str, ...], float] = {}
    for metric in ACTIONS_FINISHED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[(sample.labels["connector"], sample.labels["outcome"])] = sample.value
    return out


def die_with_parent() -> None:
    """Linux: SIGTERM when the daemon dies, however it dies (elsewhere the wake socket's
    end does it)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    wake_fd, control_fd, windows_fd = (int(a) for a in (argv or sys.argv[1:]))
    control = Connection(control_fd)
    config: Config = control.recv()  # from the daemon: never on a command line or on disk
    worker = ExecutorWorker(
        config,
        control,
        socket.socket(fileno=windows_fd),
        socket.socket(fileno=wake_fd),
        SystemClock(),
    )
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
