"""Memory settings for a long-running daemon: glibc malloc's (few arenas, free memory
handed back; no-ops, False, on a C library without these calls: musl, macOS) and the
cyclic garbage collector's (what lives as long as the daemon is frozen out of its walks).
"""

from __future__ import annotations

import ctypes
import gc
import os
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
MALLOC_ARENAS = 2


def _libc_function(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas() -> bool:
    """At most MALLOC_ARENAS glibc malloc arenas, unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread that allocates an arena of its own (up to 8 per core), and
    memory freed in one is not reused by another: with the daemon's dozen threads its RSS
    crept up ~5 MB per 10,000 webhooks (issue 17). The systemd unit sets MALLOC_ARENA_MAX=2;
    this does the same for a daemon started otherwise. Call before the threads start.
    True when set; False when the environment decides or the C library has no mallopt."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # read by glibc itself at start
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, MALLOC_ARENAS))


_malloc_trim = _libc_function("malloc_trim")


def release_free_memory() -> bool:
    """Hand the free pages inside malloc's heaps back to the kernel (`malloc_trim(0)`).

    glibc returns memory to the kernel only from the top of a heap. A busy spell leaves
    freed blocks below live ones (SQLite's page caches filling and being let go, a batch's
    rows), and without this the RSS stays at its high-water mark: ~6-10 MB of a daemon's
    28 MB of heap were free but held after 60,000 webhooks (benchmarks/growth.py, issue
    17). Cheap (the arenas are walked once; ctypes lets the GIL go meanwhile): the
    heartbeat calls it. True when the C library has it."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def freeze_long_lived() -> int:
    """Take what the daemon holds for its whole life (modules, clients, settings, compiled
    rules) out of the cyclic garbage collector's walks: each full collection walked all of
    it again, and under load those came to about a twentieth of the daemon's CPU (0.74 s of
    full collections in a 20,000-webhook `peer.py` run; 0.18 s with this; issue 17). The
    garbage of the start is collected first, so none is kept. Called when the daemon starts
    serving, and again after a reload (`refreeze`). Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def refreeze() -> int:
    """After a reload: what was frozen goes back to the collector (the replaced rules, once
    garbage, are collected), then what is held now is frozen."""
    gc.unfreeze()
    return freeze_long_lived()
