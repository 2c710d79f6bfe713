"""syncd's threads named for the operating system.

Python's thread names stay inside Python: `top -H`, `ps -L` and /proc/<pid>/task/*/comm
show every thread of the daemon as "python". Named with prctl(PR_SET_NAME), they show
which loop each is ("executor-3", "inbox-writer", "poll-hubspot-de": the kernel keeps 15
bytes), so an operator can see which part of a busy daemon takes the CPU. Linux only;
elsewhere, or where the call is refused (a seccomp filter answering EPERM), the thread
keeps its name and nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from typing import Any

PR_SET_NAME = 15  # prctl option (linux/prctl.h)
NAME_BYTES = 15  # the kernel's limit, without the terminating NUL


def _find_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # PyDLL: called holding the GIL (a one-line system call), so a thread starting
        # keeps the GIL as it did before it was named, rather than handing it around.
        return ctypes.PyDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


def os_name(name: str) -> bytes:
    """What the kernel keeps of `name`: ASCII (anything else as "?"), at most 15 bytes."""
    return name.encode("ascii", "replace")[:NAME_BYTES]


def name_this_thread(name: str) -> bool:
    """Give the calling thread `name` for the operating system; True when it took."""
    if _prctl is None:
        return False
    return bool(_prctl(PR_SET_NAME, ctypes.c_char_p(os_name(name)), 0, 0, 0) == 0)


def start_thread(target: Callable[[], Any], name: str) -> threading.Thread:
    """A daemon thread running `target`, named `name` for Python and for the system."""

    def run() -> None:
        name_this_thread(name)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
