"""Small durable state the engine lends to connectors, so they never touch the store.

- `KeyValue`: JSON values in the store's `state` table, scoped to one connector (Airtable's
  webhook payload cursors, for example). Not for secrets: secrets never reach the store.
- `SecretFile`: secrets a connector receives at run time (Airtable shows a webhook's MAC
  secret once, at creation) kept in a file only the service user can read (mode 0600) in
  the state directory.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from syncd.clock import Clock, to_ms
from syncd.store import state
from syncd.store.db import Store


class KeyValue:
    def __init__(self, store: Store, scope: str, clock: Clock) -> None:
        self.store = store
        self.scope = scope
        self.clock = clock

    def get(self, key: str, default: Any = None) -> Any:
        value = state.get_value(self.store, self.scope, key)
        return default if value is None else value

    def set(self, key: str, value: Any) -> None:
        state.set_value(self.store, self.scope, key, value, to_ms(self.clock.now()))


class SecretFile:
    """A JSON object in a 0600 file; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def get(self, key: str) -> str | None:
        return self.read().get(key)

    def set(self, key: str, value: str | None) -> None:
        with self._lock:
            data = self.read()
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets-")
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w") as handle:
                    json.dump(data, handle)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
