"""A problem found in a mapping file (by the loader or by a rule's example)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    rule_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" rule {self.rule_id}:" if self.rule_id else ""
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{rule}{field} {self.message}"
