"""The poll cursor and the list options of one poll.

A poll is a listing of the records whose LAST_MODIFIED_TIME() is after `since`, read one page
(<= 100 records) per `poll` call by following Airtable's `offset`. The cursor is JSON:

    {"since": <ms or null>, "started": <ms or null>, "offset": <str or null>}

- `since`: the lower bound of the listing (null: every record).
- `started`: our clock when the listing began; when the last page is read, the next listing's
  `since` becomes `started - overlap`. Taking the start of the listing (not the newest
  modified time seen) means a record changed while we were paging is listed again next time,
  and the overlap absorbs clock skew between this host and Airtable. Records seen twice are
  harmless: the engine diffs snapshots.
- `offset`: the page to read next. An offset can expire (422
  LIST_RECORDS_ITERATOR_NOT_AVAILABLE); then the listing restarts from `since`, keeping
  `started`, so nothing is lost.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from syncd.sdk import PermanentError, from_ms


@dataclass(frozen=True)
class PollCursor:
    since: int | None = None
    started: int | None = None
    offset: str | None = None

    @classmethod
    def decode(cls, text: str | None) -> PollCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                since=_int_or_none(data.get("since")),
                started=_int_or_none(data.get("started")),
                offset=data.get("offset") or None,
            )
        except (ValueError, TypeError, AttributeError):
            raise PermanentError("unreadable Airtable poll cursor") from None

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def iso_utc(ms: int) -> str:
    moment = from_ms(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def modified_after_formula(since_ms: int) -> str:
    return f"IS_AFTER(LAST_MODIFIED_TIME(),'{iso_utc(since_ms)}')"


def list_options(
    cursor: PollCursor, page_size: int, sort_field: str | None, with_offset: bool = True
) -> dict[str, Any]:
    """pyairtable `options` for one page of the listing described by `cursor`."""
    options: dict[str, Any] = {"page_size": page_size}
    if cursor.since is not None:
        options["formula"] = modified_after_formula(cursor.since)
    if sort_field:
        options["sort"] = [sort_field]
    if with_offset and cursor.offset:
        options["offset"] = cursor.offset
    return options
