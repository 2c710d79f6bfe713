"""One rate budget per API account for the daemon and its executor process.

An API counts the requests of both processes together, so the executor process keeps no
windows of its own: each governor of its connectors asks the daemon's governor of the same
API and account (`RemoteWindows`), over a socket the daemon serves (`WindowsServer`). The
daemon's governors are the one budget, as they are in a single process: the same sliding
windows, the same pause after a 429 seen by either process.

Every request of the executor process asks once (`take`) and tells once (`finish`), so
the exchange must cost little on both sides (issue 17): the socket keeps message
boundaries (SOCK_SEQPACKET: one send, one message), a message is a few packed numbers,
and what is only told (`finish`) gets no answer: the next request of the same process
comes after it on the socket. A governor and a set of limits
are named once by the executor process (`register`) and by number afterwards. Pickle and
multiprocessing's connections cost the daemon about ten times as much per request.

The socket is a pair made by the daemon for the child it starts, so nothing else can
connect to it.
"""

from __future__ import annotations

import math
import pickle
import socket
import struct
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from syncd.errors import TransientError
from syncd.governor import Applicable, Governor, Limit

log = structlog.get_logger("syncd.windows_rpc")

# Operations, the first byte of a message. The asking ones get an answer of one double.
REGISTER, TAKE, PEEK, FINISH, PAUSE, PAUSED_UNTIL, USED = range(7)
ASKING = frozenset({REGISTER, TAKE, PEEK, PAUSE, PAUSED_UNTIL, USED})
CALL = struct.Struct("<BIdd")  # operation, governor and limits (registered number), 2 numbers
ANSWER = struct.Struct("<d")
LARGEST_MESSAGE = 65536
UNKNOWN = -1.0  # the answer to a registration the daemon cannot match


def governor_key(governor: Governor) -> str:
    """A governor's API and account (an id or a hash, never a secret)."""
    return f"{governor.api}:{governor.account}"


def limits_shape(limits: Sequence[Applicable]) -> tuple[tuple[str, int], ...]:
    """What names a set of applicable limits in both processes: each limit's name and this
    request's cost (the processes read the same config, so the rest is the same)."""
    return tuple((limit.name, cost) for limit, _, cost, _ in limits)


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """The daemon's end and the executor process's end."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class BudgetUnreachable(TransientError):
    """The daemon that keeps the rate budget did not answer (it is stopping, or gone)."""


class WindowsServer:
    """Answers the executor process's governors from this process's governors."""

    def __init__(self, governors: Iterable[Governor]) -> None:
        self.by_key = {governor_key(g): g for g in governors}

    def serve(self, sock: socket.socket) -> None:
        """Answer on `sock` until the other end closes it. Registrations are per socket:
        a new executor process names its governors again."""
        registered: list[tuple[Governor, list[Applicable] | Limit | None]] = []
        while True:
            try:
                message = sock.recv(LARGEST_MESSAGE)
            except OSError:
                return
            if not message:
                return
            op = message[0]
            try:
                answer = self._answer(op, message, registered)
            except Exception:  # a bug, not the budget: said here, and the call fails there
                log.exception("windows_rpc.failed", op=op)
                answer = math.nan
            if op in ASKING:
                try:
                    sock.send(ANSWER.pack(answer))
                except OSError:
                    return

    def _answer(
        self,
        op: int,
        message: bytes,
        registered: list[tuple[Governor, list[Applicable] | Limit | None]],
    ) -> float:
        if op == REGISTER:
            key, shape = pickle.loads(message[1:])
            found = self._match(key, shape)
            if found is None:
                log.error("windows_rpc.unknown", governor=key, limits=shape)
                return UNKNOWN
            registered.append(found)
            return float(len(registered) - 1)
        _, index, first, second = CALL.unpack(message)
        governor, limits = registered[index]
        if op == TAKE:
            return float(governor.serve_windows("take", (limits, first)))
        if op == PEEK:
            return float(governor.serve_windows("peek", (limits, first)))
        if op == FINISH:
            governor.serve_windows("finish", (limits, first, second))
        elif op == PAUSE:
            governor.serve_windows("pause", (first,))
        elif op == PAUSED_UNTIL:
            return float(governor.serve_windows("paused_until", ()))
        elif op == USED:
            return float(governor.serve_windows("used", (limits, first)))
        return 0.0

    def _match(
        self, key: str, shape: Any
    ) -> tuple[Governor, list[Applicable] | Limit | None] | None:
        """This process's governor `key`, and its limits named by `shape`: applicable
        limits (names and costs), one limit (a name), or none."""
        governor = self.by_key.get(key)
        if governor is None:
            return None
        if shape is None:
            return governor, None
        if isinstance(shape, str):
            kept = [governor.window(limit)[0] for limit in governor.limits]
            named = [limit for limit in kept if limit.name == shape]
            return (governor, named[0]) if named else None
        applicable = governor.applicable_with(dict(shape))
        if limits_shape(applicable) != tuple(shape):
            return None
        return governor, applicable


class WindowsClient:
    """The executor process's end of the socket: one exchange at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._numbers: dict[tuple[str, Any], int] = {}

    def number(self, key: str, shape: Any) -> int:
        """The daemon's number for governor `key` with limits `shape` (asked once)."""
        found = self._numbers.get((key, shape))
        if found is None:
            answer = self._exchange(bytes([REGISTER]) + pickle.dumps((key, shape)), key)
            if answer < 0:
                raise BudgetUnreachable(f"the daemon keeps no rate budget like {key}'s")
            found = self._numbers[(key, shape)] = int(answer)
        return found

    def ask(self, op: int, key: str, shape: Any, first: float = 0.0) -> float:
        message = CALL.pack(op, self.number(key, shape), first, 0.0)
        return self._exchange(message, key)

    def tell(self, op: int, key: str, shape: Any, first: float, second: float = 0.0) -> None:
        message = CALL.pack(op, self.number(key, shape), first, second)
        try:
            with self._lock:
                self.sock.send(message)
        except OSError as exc:
            raise BudgetUnreachable(f"the daemon's rate budget for {key} is gone") from exc

    def _exchange(self, message: bytes, key: str) -> float:
        try:
            with self._lock:
                self.sock.send(message)
                answer = self.sock.recv(ANSWER.size)
        except OSError as exc:
            raise BudgetUnreachable(f"the daemon's rate budget for {key} is gone") from exc
        if len(answer) != ANSWER.size:
            raise BudgetUnreachable(f"the daemon's rate budget for {key} is gone")
        (value,) = ANSWER.unpack(answer)
        if math.isnan(value):
            raise BudgetUnreachable(f"the daemon's rate budget for {key} failed (its log says why)")
        return float(value)

    def close(self) -> None:
        self.sock.close()


class RemoteWindows:
    """The `Windows` of a governor whose budget the daemon keeps (see the module)."""

    def __init__(self, client: WindowsClient, key: str) -> None:
        self.client = client
        self.key = key

    def take(self, limits: Sequence[Applicable], now: float) -> float:
        return self.client.ask(TAKE, self.key, limits_shape(limits), now)

    def peek(self, limits: Sequence[Applicable], now: float) -> float:
        return self.client.ask(PEEK, self.key, limits_shape(limits), now)

    def finish(self, limits: Sequence[Applicable], started: float, now: float) -> None:
        self.client.tell(FINISH, self.key, limits_shape(limits), started, now)

    def pause(self, until: float) -> None:
        self.client.ask(PAUSE, self.key, None, until)  # in force when this returns

    def paused_until(self) -> float:
        return self.client.ask(PAUSED_UNTIL, self.key, None)

    def used(self, limit: Limit, now: float) -> int:
        return int(self.client.ask(USED, self.key, limit.name, now))


def share_with_daemon(client: WindowsClient, governors: Iterable[Governor]) -> None:
    """The executor process: every governor's windows are the daemon's."""
    for governor in governors:
        governor.share_through(RemoteWindows(client, governor_key(governor)))
