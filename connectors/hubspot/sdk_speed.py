"""Two per-object costs of hubspot-api-client's answer parsing, removed (issue 17).

Under load, parsing batch-read answers was about 15% of the daemon's CPU:
- every timestamp (createdAt, updatedAt, each history entry) goes through
  `dateutil.parser.parse`, a general parser many times slower than
  `datetime.fromisoformat`, which reads HubSpot's ISO 8601 (with `Z`) exactly (Python 3.11+);
  anything it does not read still goes to the SDK's own parser;
- every model object built from an answer makes a `Configuration()` of its own (loggers,
  levels, a thread pool setting) only to read `client_side_validation`; they now share one.
  Clients keep their own: the SDK's factory always passes one to each ApiClient.

Installed once, for the generated packages syncd reads with; the answers' objects and values
are the same as before.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

PACKAGES = ("deals", "associations.v4", "companies", "contacts")
MANGLED = "_ApiClient__deserialize_datetime"  # ApiClient.__deserialize_datetime
_installed: set[str] = set()


def _fast_datetime(original: Any) -> Any:
    def parse(self: Any, string: Any) -> Any:
        try:
            return datetime.fromisoformat(string)
        except (TypeError, ValueError):
            return original(self, string)

    return parse


def _shared_model_configuration(configuration_class: Any) -> None:
    shared = configuration_class()
    sdk_default_copy = configuration_class.get_default_copy

    def get_default_copy(cls: Any) -> Any:
        return shared if cls._default is None else sdk_default_copy()

    configuration_class.get_default_copy = classmethod(get_default_copy)


def install() -> None:
    for name in PACKAGES:
        if name in _installed:
            continue
        api_client = importlib.import_module(f"hubspot.crm.{name}.api_client").ApiClient
        configuration = importlib.import_module(f"hubspot.crm.{name}.configuration")
        setattr(api_client, MANGLED, _fast_datetime(getattr(api_client, MANGLED)))
        _shared_model_configuration(configuration.Configuration)
        _installed.add(name)
