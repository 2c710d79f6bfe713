"""The base schema as the connector needs it: table ids and names, field ids and names.

Read from `GET /v0/meta/bases/{base}/tables` as plain JSON (pyairtable's schema models are
strict about every field type's options, which a connector that only needs names should not
depend on).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

# Field types whose value is a last-modified time, usable as the record's version.
VERSION_FIELD_TYPES = frozenset({"lastModifiedTime", "formula"})


@dataclass(frozen=True)
class FieldInfo:
    id: str
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo:
    id: str
    name: str
    fields: tuple[FieldInfo, ...]

    def field(self, id_or_name: str) -> FieldInfo | None:
        return next((f for f in self.fields if id_or_name in (f.id, f.name)), None)

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def unknown_fields(self, names: list[str]) -> list[str]:
        """One problem per name not in the table, with the closest names as a hint."""
        problems = []
        for name in names:
            if self.field(name) is None:
                close = difflib.get_close_matches(name, self.field_names(), n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                problems.append(f"table {self.name!r} has no field {name!r}{hint}")
        return problems


@dataclass(frozen=True)
class BaseSchema:
    tables: tuple[TableInfo, ...]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> BaseSchema:
        return cls(
            tuple(
                TableInfo(
                    id=t["id"],
                    name=t["name"],
                    fields=tuple(
                        FieldInfo(f["id"], f["name"], f.get("type", ""))
                        for f in t.get("fields", [])
                    ),
                )
                for t in data.get("tables", [])
            )
        )

    def table(self, id_or_name: str) -> TableInfo | None:
        """A table by id, else by name (an id never looks like a name, so no ambiguity)."""
        return next((t for t in self.tables if t.id == id_or_name), None) or next(
            (t for t in self.tables if t.name == id_or_name), None
        )
