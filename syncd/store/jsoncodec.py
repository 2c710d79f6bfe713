"""JSON for the store's JSON columns (params, fields, history, traces, headers).

orjson is several times faster than the standard module, and every ingest and action writes
and reads these columns (issue 17). The standard module stays the fallback for the little
orjson refuses (integers past 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: ...} is stored as {"1": ...}, as json.dumps does


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)


def loads(text: Any) -> Any:
    # SQLite gives a JSON column NUMERIC affinity: a stored number comes back as a number
    if isinstance(text, int | float):
        return text
    return orjson.loads(text)
