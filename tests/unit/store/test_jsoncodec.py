"""The store's JSON codec reads and writes what the standard module would."""

from __future__ import annotations

import json

import pytest

from syncd.store import jsoncodec


@pytest.mark.parametrize(
    "value",
    [
        {"title": "Café — New Hub", "labels": ["a", "b"], "n": 3, "x": 1.5, "none": None},
        [1, "two", {"three": [3]}],
        {"big": 2**70},  # past 64 bits: orjson refuses, the standard module takes it
        "plain",
        True,
    ],
)
def test_values_come_back_as_the_standard_module_reads_them(value: object) -> None:
    text = jsoncodec.dumps(value)
    assert json.loads(text) == value
    assert jsoncodec.loads(text) == value


def test_keys_that_are_not_strings_are_stored_as_strings_like_json_does() -> None:
    assert jsoncodec.loads(jsoncodec.dumps({1: "a"})) == json.loads(json.dumps({1: "a"}))


def test_a_number_sqlite_already_turned_into_a_number_is_read_as_is() -> None:
    assert jsoncodec.loads(1733000000000) == 1733000000000
    assert jsoncodec.loads(2.5) == 2.5
