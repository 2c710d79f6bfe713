"""The `amount` template filter: invoice amounts are read, never guessed."""

from __future__ import annotations

import pytest

from syncd.mapping.amounts import AmountError, amount
from syncd.mapping.templates import render_string


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (900, 900),
        (1250.4, 1250.4),
        ("1,500", 1500),
        ("1500.50", 1500.5),
        (" 900 ", 900),
        ("-1,250.50", -1250.5),
    ],
)
def test_amounts_written_as_digits_are_read(value: object, expected: float) -> None:
    assert amount(value) == expected


@pytest.mark.parametrize("value", ["$900", "€900", "900/month", "TBD", "1.500,00", True])
def test_anything_else_fails_with_the_value_named(value: object) -> None:
    with pytest.raises(AmountError, match="not an amount"):
        amount(value)
    assert amount(value, on_error=False) is False


def test_empty_cells_are_missing_not_errors() -> None:
    assert amount(None) is None and amount("  ", missing=0) == 0


def test_the_filter_fails_a_render() -> None:
    assert render_string("{{ fee | amount }}", {"fee": "1,500"}) == "1500"
    with pytest.raises(Exception, match="not an amount: '\\$900'"):
        render_string("{{ fee | amount }}", {"fee": "$900"})
