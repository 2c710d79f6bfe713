"""Logging for the daemon: structlog for our code, stdlib for libraries, one redacting path.

Every record, ours or a library's (urllib3, uvicorn, jira, ...), goes through the same
structlog processors on one stderr handler: exceptions are formatted to text first, then every
configured secret and every token-shaped string is removed, then the line is rendered (JSON
lines under systemd/journald, readable colours on a terminal). `redact()` is the same
function, for error messages kept in the store or returned over HTTP.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words all over the logs.
MIN_SECRET_LENGTH = 6

THIRD_PARTY_LOGGERS = (
    "urllib3",
    "requests",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "jira",
    "github",
    "pyairtable",
    "hubspot",
    "aiosmtpd",
    "mail.log",
    "sqlalchemy",
    "alembic",
)

# Token shapes that are secret whoever configured them.
_TOKEN_SHAPES = re.compile(
    "|".join(
        (
            r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub classic, OAuth, app tokens
            r"\bgithub_pat_[A-Za-z0-9_]{30,}",  # GitHub fine-grained PAT
            r"\bpat-[a-z]{2}\d+-[A-Za-z0-9-]{20,}",  # HubSpot private app token
            r"\bATATT[A-Za-z0-9_=+/-]{20,}",  # Atlassian API token
            r"\bwhsec_[A-Za-z0-9+/=_-]{16,}",  # webhook signing secret
            r"\bpat[A-Za-z0-9]{14}\.[0-9a-f]{64}\b",  # Airtable personal access token
            # Airtable legacy API key: 'key' + 14 chars with a digit and a capital.
            r"\bkey(?=[A-Za-z0-9]{0,13}\d)(?=[a-z0-9]{0,13}[A-Z])[A-Za-z0-9]{14}\b",
        )
    )
)
# The HTTP scheme is case-insensitive, but lower-case "bearer token" is usually prose.
_BEARER = re.compile(r"\bBearer\s+[^\s'\",;]+")
_BASIC = re.compile(r"\bBasic\s+([A-Za-z0-9+/]{4,}={0,2})")
# A header value runs to the end of the line (or the closing quote in a repr).
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization)(['\"]?\s*[:=]\s*)(?:(['\"])(.*?)\3|[^\r\n'\"]+)"
)
# `"password": "..."`, `access_token=...` in reprs, config dumps and URLs: one word.
_ASSIGNMENT = re.compile(
    r"(?i)\b([\w-]*(?:token|secret|password|passwd|api[_-]?key))"
    r"(['\"]?\s*[:=]\s*)(?:(['\"])(.*?)\3|[^\s&,;'\"]+)"
)
# Event-dict keys whose values are secret whatever they look like.
_SECRET_KEY = re.compile(
    r"(?i)(?:.*[_-])?(?:token|secret|password|passwd|api[_-]?key|authorization|cookie)"
)

_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def add_secrets(values: Iterable[str]) -> None:
    """Register secret values (e.g. `Connector.secret_values()`) so they never print."""
    global _secret_pattern
    with _lock:
        for value in values:
            _secret_values.update(_variants(value))
        ordered = sorted(_secret_values, key=len, reverse=True)  # longest first wins
        _secret_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def clear_secrets() -> None:
    """Forget registered secrets (tests; a reload keeps old ones: they may still be in flight)."""
    global _secret_pattern
    with _lock:
        _secret_values.clear()
        _secret_pattern = None


def _variants(value: str) -> set[str]:
    # Credential files end with a newline; URLs carry the secret percent-encoded.
    forms = {value, value.strip(), quote(value.strip(), safe="")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def redact(text: str) -> str:
    """`text` without configured secrets, token-shaped strings or credential assignments."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(_redact_assignment, text)
    text = _ASSIGNMENT.sub(_redact_assignment, text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    return _BASIC.sub(_redact_basic, text)


def _redact_assignment(match: re.Match[str]) -> str:
    name, separator, quote_char = match.group(1), match.group(2), match.group(3)
    if quote_char:
        return f"{name}{separator}{quote_char}{REDACTED}{quote_char}"
    return f"{name}{separator}{REDACTED}"


def _redact_basic(match: re.Match[str]) -> str:
    # Only real credentials: base64 of "user:password". Keeps "Basic information" readable.
    try:
        decoded = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"Basic {REDACTED}" if b":" in decoded else match.group(0)


def redact_value(value: Any) -> Any:
    """`value` with secrets removed, recursing through dicts, lists, tuples and sets."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, Mapping):
        return {_redact_key(k): _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(redact_value(item) for item in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Renderers fall back to repr(): check what they would print.
    shown = repr(value)
    cleaned = redact(shown)
    return value if cleaned == shown else cleaned


def _redact_key(key: Any) -> Any:
    return redact(key) if isinstance(key, str) else key


def _redact_item(key: Any, value: Any) -> Any:
    is_secret_key = isinstance(key, str) and _SECRET_KEY.fullmatch(key) is not None
    if is_secret_key and value and isinstance(value, str | bytes | bytearray):
        return REDACTED
    return redact_value(value)


def redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: runs after exceptions are formatted, before rendering."""
    return {_redact_key(k): _redact_item(k, v) for k, v in event_dict.items()}


def configure_logging(
    level: int | str = "INFO",
    json: bool | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one redacting handler on `stream` (stderr).

    `json=None` picks JSON lines when the stream is not a terminal (systemd, pipes).
    Safe to call again (on reload): it replaces its own handler.
    """
    out = stream if stream is not None else sys.stderr
    as_json = not _is_tty(out) if json is None else json
    add_secrets(secrets)

    stamp: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=_is_tty(out))
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Library records: their `extra=` fields become event keys, redacted like ours.
        foreign_pre_chain=[*stamp, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Text first, then redact: a traceback carries exception messages and arguments.
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
    handler = _SyncdHandler(out)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SyncdHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in THIRD_PARTY_LOGGERS:
        # Libraries that brought their own handlers would bypass redaction.
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
    # Off then on: re-installs the hook even if something replaced showwarning since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            *stamp,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of each message; the plain one is enough."""
    event_dict.pop("color_message", None)
    return event_dict


class _SyncdHandler(logging.StreamHandler):
    """Our handler, told apart from others so reconfiguring replaces only it."""


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    # The default hook prints the raw traceback to stderr, secrets included.
    logging.getLogger("syncd").critical("uncaught exception", exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger("syncd").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
