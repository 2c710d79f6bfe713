"""The executor in a process of its own (`[executor] separate_process = true`).

One Python process runs Python on one core at a time (the GIL): under load, a daemon's
intake, inbox and executor share that core, and its other cores idle (issue 17). With this
setting the daemon starts a child process that only performs actions, and supervises it.

What stays the same, and why it holds:
- **The store is the truth.** The child claims actions with the usual lease and records
  their outcomes as the in-process executor does; the two processes queue their writers on
  one lock (syncd.store.writelock).
- **One rate budget per API account.** The child's governors ask the daemon's
  (syncd.windows_rpc).
- **Nothing fails unseen.** The child reports its loops' failures (shown by /readyz,
  alerted as the daemon's own), its dead actions (the daemon's alerter mails
  them) and its counts of finished actions (the daemon's /metrics) over a socket; when it
  exits, the daemon logs it, alerts, releases its leases (it is dead: nothing of its is in
  flight) and starts another, waiting longer after each exit in a row.
- **It never outlives the daemon.** The kernel sends it SIGTERM when the daemon dies, and
  it stops when its wake socket closes.

The daemon hands it its configuration over the socket (secrets stay off the command line
and the disk) and wakes it with a byte per wake when the inbox has planned actions.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import structlog

from syncd.config import Config
from syncd.governor import Governor
from syncd.metrics import ACTIONS_FINISHED
from syncd.osthreads import start_thread
from syncd.windows_rpc import WindowsServer, socket_pair

log = structlog.get_logger("syncd.executor_process")

CHILD_MODULE = "syncd.executor_worker"  # the child's side
FIRST_RESTART_SECONDS = 1.0
LONGEST_RESTART_SECONDS = 60.0
STEADY_SECONDS = 60.0  # a child that ran this long resets the wait before a restart
START_TIMEOUT_SECONDS = 60.0  # a child not ready by then is killed and started again

LoopReport = Callable[[str, str | None], None]  # loop name, error (None: succeeding again)


class ExecutorProcess:
    """The daemon's side: starts the child, wakes it, hears it, restarts it."""

    def __init__(
        self,
        config: Config,
        governors: Iterable[Governor],
        *,
        on_loop: LoopReport,
        on_dead: Callable[[Any, str], None] | None,
        on_exit: Callable[[int, str], None],
    ) -> None:
        self.config = config
        self.windows = WindowsServer(governors)
        self.on_loop = on_loop
        self.on_dead = on_dead
        self.on_exit = on_exit  # after each unexpected exit: exit code, what to tell a person
        self.counts = ForwardedCounts()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._wake: socket.socket | None = None
        self._wake_lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.exits = 0  # unexpected exits since the daemon started
        self.last_exit = ""
        self._restart_at = 0.0

    # -- the daemon's calls ---------------------------------------------------------------

    def start(self) -> None:
        self._supervisor = start_thread(self._supervise, "executor-process")

    def wake(self) -> None:
        """Let one of the child's executor threads go (a byte; never blocks: when the
        socket's buffer is full, the child has wakes enough waiting)."""
        sock = self._wake
        if sock is None:
            return
        with contextlib.suppress(OSError):  # full, or the child is gone: nothing to wake
            sock.send(b"w")

    def problems(self) -> list[str]:
        """What /readyz says while the child is not working."""
        if self._ready.is_set() or self._stopping.is_set():
            return []
        if not self.exits:
            return ["executor process starting"]
        wait = max(0.0, self._restart_at - time.monotonic())
        return [
            f"executor process not running: {self.last_exit}; "
            f"started again in {wait:.0f} s (exits so far: {self.exits})"
        ]

    def stopping(self) -> None:
        """The daemon is stopping: an exit of the child from now on is expected (a signal
        to the whole service may reach it first), and none is restarted."""
        self._stopping.set()

    def stop(self, timeout: float) -> None:
        """SIGTERM: the child finishes the actions in hand, records them and exits; killed
        if it has not within `timeout` (its leases are released at the next start)."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("executor_process.killed", reason=f"not stopped within {timeout} s")
                proc.kill()
                proc.wait()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    # -- supervision ----------------------------------------------------------------------

    def _supervise(self) -> None:
        wait = FIRST_RESTART_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            code, why = self._run_child()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                wait = FIRST_RESTART_SECONDS
            self.exits += 1
            self.last_exit = why
            self._restart_at = time.monotonic() + wait
            log.error("executor_process.exited", code=code, detail=why, restart_in=wait)
            try:
                self.on_exit(code, why)
            except Exception:  # the restart matters more than the alert
                log.exception("executor_process.on_exit_failed")
            self._stopping.wait(wait)
            wait = min(wait * 2, LONGEST_RESTART_SECONDS)

    def _run_child(self) -> tuple[int, str]:
        """Start a child, serve it until it exits; its exit code and a sentence about it."""
        self._ready.clear()
        wake, wake_child = socket.socketpair()
        control, control_child = Pipe(duplex=True)
        windows, windows_child = socket_pair()
        ends = [wake_child.fileno(), control_child.fileno(), windows_child.fileno()]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, *map(str, ends)],
                pass_fds=ends,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            for end in (wake, wake_child, control, control_child, windows, windows_child):
                end.close()
            return -1, f"could not start ({exc.strerror or exc})"
        for end in (wake_child, control_child, windows_child):
            end.close()  # the child's now: EOF here when it exits
        wake.setblocking(False)  # a wake never waits (see `wake`)
        self._proc = proc
        served = start_thread(lambda: self.windows.serve(windows), "executor-budget")
        try:
            control.send(self.config)
            self._wake = wake
            self._hear(control, proc)
        except (OSError, EOFError):
            pass  # it exited: said below
        finally:
            self._wake = None
            self._ready.clear()
        if proc.poll() is None and not self._stopping.is_set():
            proc.kill()  # silent (not ready in time): start a fresh one
        code = proc.wait()
        self.counts.child_restarted()
        served.join(timeout=5)
        for end in (wake, control, windows):
            end.close()
        if code < 0:
            return code, f"killed by signal {-code}"
        return code, f"exited with code {code}"

    def _hear(self, control: Connection, proc: subprocess.Popen[bytes]) -> None:
        """The child's reports, until it closes its end."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            waiting = not self._ready.is_set()
            if waiting and not control.poll(max(0.0, deadline - time.monotonic())):
                log.error("executor_process.not_ready", within=START_TIMEOUT_SECONDS)
                return
            message = control.recv()
            kind = message[0]
            if kind == "ready":
                self._ready.set()
                log.info("executor_process.ready", pid=proc.pid)
            elif kind == "loop":
                self.on_loop(message[1], message[2])
            elif kind == "dead" and self.on_dead is not None:
                try:
                    self.on_dead(message[1], message[2])
                except Exception:  # as in the executor: the action stays dead, and shown
                    log.exception("executor_process.alert_failed")
            elif kind == "counts":
                self.counts.add(message[1])


class ForwardedCounts:
    """The child's counts of finished actions, added to this process's counter: the child
    sends its totals; what is new since its last report is added here (a new child
    starts from zero)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], float] = {}

    def add(self, totals: dict[tuple[str, ...], float]) -> None:
        for labels, total in totals.items():
            before = self._last.get(labels, 0.0)
            new = total - before if total >= before else total
            if new > 0:
                ACTIONS_FINISHED.labels(*labels).inc(new)
            self._last[labels] = total

    def child_restarted(self) -> None:
        self._last = {}
