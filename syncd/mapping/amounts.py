"""The `amount` template filter: money read from a CRM or Airtable cell, for invoices.

Stricter than the numbers of conditions on purpose: an invoice line must not guess. A
currency sign ("$900", "€900") is refused, since the amount would be invoiced in the
currency the mail states whatever the sign said; so is any other text ("900/month", "TBD").
Digits with `,` thousands and `.` decimals are read ("1,500", "1500.50"), as are numbers.
"""

from __future__ import annotations

import re
from typing import Any

_AMOUNT = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
RAISE = object()


class AmountError(ValueError):
    pass


def amount(value: Any, on_error: Any = RAISE, missing: Any = None) -> Any:
    """The number in `value`; `missing` for an empty cell; for unreadable text, `on_error`
    if given, else AmountError (which fails the rule's action, and reaches the alert inbox)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return missing
    if isinstance(value, bool):
        return _unreadable(value, on_error)
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    if not _AMOUNT.match(text):
        return _unreadable(value, on_error)
    number = float(text.replace(",", ""))
    return int(number) if number.is_integer() else number


def _unreadable(value: Any, on_error: Any) -> Any:
    if on_error is not RAISE:
        return on_error
    raise AmountError(
        f"not an amount: {str(value)[:40]!r} (write digits only, in the "
        "invoice currency: 900 or 1,500.50)"
    )
