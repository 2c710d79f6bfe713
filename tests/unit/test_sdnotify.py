"""sd_notify client against a real unix datagram socket bound by the test."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd import sdnotify
from syncd.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_sends_ready_and_status(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert Notifier({"NOTIFY_SOCKET": path}).ready("serving on :8080")
    assert received(sock) == ["READY=1", "STATUS=serving on :8080"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda n: n.stopping(), ["STOPPING=1"]),
        (lambda n: n.watchdog(), ["WATCHDOG=1"]),
        (lambda n: n.status("2 actions queued"), ["STATUS=2 actions queued"]),
        (lambda n: n.ready(), ["READY=1"]),
    ],
)
def test_each_state_is_one_datagram(listener, call, expected) -> None:
    sock, path = listener
    assert call(Notifier({"NOTIFY_SOCKET": path}))
    assert received(sock) == expected


def test_status_cannot_inject_another_assignment(listener) -> None:
    sock, path = listener
    Notifier({"NOTIFY_SOCKET": path}).status("bad\nREADY=1")
    assert received(sock) == ["STATUS=bad READY=1"]


def test_reloading_carries_the_monotonic_clock(listener) -> None:
    sock, path = listener
    before = time.monotonic_ns() // 1000
    assert Notifier({"NOTIFY_SOCKET": path}).reloading()
    after = time.monotonic_ns() // 1000
    lines = received(sock)
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_abstract_socket() -> None:
    name = f"syncd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert received(sock) == ["WATCHDOG=1"]


def test_no_socket_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_relative_socket_path_is_ignored() -> None:
    assert not Notifier({"NOTIFY_SOCKET": "relative/notify.sock"}).enabled


def test_send_failure_returns_false(tmp_path: Path) -> None:
    # Nobody listens at this path: the daemon must carry on.
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert notifier.ready() is False


def test_module_functions_use_the_process_environment(listener, monkeypatch) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setattr(sdnotify, "_default", None)
    assert sdnotify.stopping()
    assert received(sock) == ["STOPPING=1"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval() == expected
