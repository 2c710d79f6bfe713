"""Text syncd writes into GitHub: the hidden idempotency marker, and @-mention neutralising."""

from __future__ import annotations

import hashlib
import re

# A zero-width joiner after "@" keeps the text readable but stops GitHub linking and
# notifying the person (a rule's template must not page people by accident).
ZERO_WIDTH_JOINER = "\u200d"
_MENTION = re.compile(r"(?<![\w`@/.])@(?=[A-Za-z0-9])")
_SAFE_KEY = re.compile(r"[A-Za-z0-9:._/+=@-]{1,200}")


def marker_value(key: str) -> str:
    """The key as written in the marker: a hash when it could break out of the comment."""
    if _SAFE_KEY.fullmatch(key) and "--" not in key:
        return key
    return "sha256-" + hashlib.sha256(key.encode()).hexdigest()


def marker(key: str) -> str:
    return f"<!-- syncd:key={marker_value(key)} -->"


def with_marker(body: str, key: str) -> str:
    return f"{body.rstrip()}\n\n{marker(key)}" if body.strip() else marker(key)


def has_marker(body: str | None, key: str) -> bool:
    return bool(body) and marker(key) in (body or "")


def neutralise_mentions(text: str) -> str:
    """`@name` and `@org/team` no longer mention anyone; e-mail addresses are left alone."""
    return _MENTION.sub("@" + ZERO_WIDTH_JOINER, text)
