"""Named points where the crash tests kill the process (SIGKILL, like `kill -9`).

`SYNCD_CRASH_AT=<name>` arms one point; `SYNCD_CRASH_SKIP=N` lets it pass N times first.
Unset (always, outside tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "inbox_committed",  # the delivery is stored, the 2xx not yet sent
    "inbox_before_commit",  # a delivery's objects fetched, their ingest not yet committed
    "action_in_flight",  # the action is marked in flight, the connector not yet called
    "remote_done",  # the connector succeeded, the local commit not yet made
    "cursor_advance",  # inside the transaction that moves a poll cursor
)

_armed = os.environ.get("SYNCD_CRASH_AT")
_skip = int(os.environ.get("SYNCD_CRASH_SKIP", "0") or 0)


def hit(name: str) -> None:
    global _skip
    if _armed != name:
        return
    if _skip > 0:
        _skip -= 1
        return
    os.kill(os.getpid(), signal.SIGKILL)
