"""Small value parsers shared by the mapping language: offsets ("-60d"), times of day, zones."""

from __future__ import annotations

import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"^\s*([+-]?)\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_offset(text: str) -> timedelta:
    """ "-60d" -> 60 days before; "7d", "+2w", "12h", "30m"."""
    match = _OFFSET.match(str(text))
    if not match:
        raise ValueError(f"bad offset {text!r}: use e.g. -60d, 7d, +2w, 12h, 30m")
    sign, amount, unit = match.groups()
    delta = timedelta(**{_UNITS[unit]: int(amount)})
    return -delta if sign == "-" else delta


def parse_time_of_day(text: str) -> time:
    try:
        hour, minute = str(text).split(":")
        return time(int(hour), int(minute))
    except ValueError:
        raise ValueError(f"bad time of day {text!r}: use HH:MM, e.g. 09:00") from None


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from None
