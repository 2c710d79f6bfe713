"""syncd.memory: free heap pages go back to the kernel; arenas are capped; what lives as long
as the daemon is frozen out of the garbage collector's walks."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

from syncd.memory import (
    freeze_long_lived,
    limit_malloc_arenas,
    refreeze,
    release_free_memory,
)

GLIBC = sys.platform.startswith("linux") and release_free_memory()

# In a child process: 48 MB in 1 KB malloc blocks (below the mmap threshold, so inside the
# heap), all freed but the last, which pins the top of the heap so glibc's own trimming
# cannot hand the rest back. The RSS is printed before and after release_free_memory().
CHILD = textwrap.dedent(
    """
    import ctypes
    from syncd.memory import release_free_memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1024) for _ in range(48 * 1024)]
    for b in blocks:
        ctypes.memset(b, 1, 1024)  # touched: resident
    for b in blocks[:-1]:
        libc.free(b)
    held = rss_mb()
    release_free_memory()
    print(held, rss_mb())
    """
)


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's (Linux)")
def test_release_free_memory_hands_freed_heap_back() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env={"MALLOC_ARENA_MAX": "1", "PATH": ""},
        check=True,
    )
    held, released = map(float, out.stdout.split())
    assert held - released > 30, (held, released)  # most of the 48 MB freed goes back


def test_arena_cap_left_to_the_environment_when_it_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


class _Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_what_is_held_at_start_is_frozen_and_a_reload_hands_it_back() -> None:
    held = _Cycle()  # what the daemon holds for its life (rules, clients)
    dropped_before = weakref.ref(_Cycle())  # start-up garbage: collected, not frozen
    try:
        assert freeze_long_lived() > 0
        assert dropped_before() is None
        assert gc.get_freeze_count() > 0
        watched = weakref.ref(held)
        del held  # the old rules, replaced at a reload: garbage, but frozen
        gc.collect()
        assert watched() is not None  # the collector does not walk frozen objects
        refreeze()  # the reload: back to the collector, collected, the rest frozen again
        assert watched() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process runs on as before
