"""syncd.osthreads: the daemon's threads carry their names to the operating system, where
`top -H` and /proc/<pid>/task/<tid>/comm show them."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from syncd.osthreads import os_name, start_thread

LINUX = sys.platform.startswith("linux")


def _comm(native_id: int) -> str:
    return Path(f"/proc/{os.getpid()}/task/{native_id}/comm").read_text().rstrip("\n")


@pytest.mark.skipif(not LINUX, reason="thread names in /proc are Linux's")
@pytest.mark.parametrize(
    ("name", "seen"),
    [
        ("executor-3", "executor-3"),
        ("poll-hubspot-deal", "poll-hubspot-de"),  # the kernel keeps 15 bytes
        ("inbox-\u00e9", "inbox-?"),
    ],
)
def test_a_started_thread_shows_its_name_in_proc(name: str, seen: str) -> None:
    found: list[str] = []
    done = threading.Event()

    def body() -> None:
        found.append(_comm(threading.get_native_id()))
        done.set()

    thread = start_thread(body, name)
    assert done.wait(10)
    thread.join(10)
    assert found == [seen]
    assert thread.name == name and thread.daemon


def test_the_name_the_kernel_keeps() -> None:
    assert os_name("inbox-writer") == b"inbox-writer"
    assert os_name("poll-github-issue") == b"poll-github-iss"
    assert len(os_name("x" * 40)) == 15
