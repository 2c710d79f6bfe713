"""Logging for the daemon: structlog for our code, stdlib for libraries, one redacting path.

Every record, ours or a library's (urllib3, uvicorn, jira, ...), goes through the same
structlog processors to one stderr handler (ours straight to its stream, libraries' through
stdlib logging): exceptions are formatted to text first, then every
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

from syncd.osthreads import start_thread

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

# What any of `redact`'s substitutions needs to find, as one alternation (the patterns above,
# or the start of them that holds no group): a text it does not match comes back unchanged,
# so one scan decides for most log values (ids, names, numbers) instead of six
# substitutions (issue 17: redaction was half the CPU of a log line).
_ALWAYS = (
    _TOKEN_SHAPES.pattern,
    r"(?i:\b(?:proxy-)?authorization['\"]?\s*[:=])",
    r"(?i:\b[\w-]*(?:token|secret|password|passwd|api[_-]?key)['\"]?\s*[:=])",
    _BEARER.pattern,
    r"\bBasic\s+[A-Za-z0-9+/]{4,}",
)

_lock = threading.Lock()
# What `configure_logging` set: our lines' threshold, the handler they go to, the renderer.
_min_level = logging.INFO
_handler: _SyncdHandler | None = None
_renderer: Processor = structlog.processors.JSONRenderer()
_secret_values: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_any_pattern: re.Pattern[str] = re.compile("|".join(f"(?:{p})" for p in _ALWAYS))
# Texts seen before and what redaction made of them (log keys, logger names, rule ids and
# the like recur on every line). Replaced, not cleared, when the secrets change: a thread
# still redacting with the old secrets writes its answer to the old one.
_redacted: dict[str, str] = {}
_REDACTED_CACHE_SIZE = 4096
_CACHED_TEXT_LENGTH = 200  # longer texts (messages, tracebacks) are rarely repeated


def add_secrets(values: Iterable[str]) -> None:
    """Register secret values (e.g. `Connector.secret_values()`) so they never print."""
    global _secret_pattern
    with _lock:
        for value in values:
            _secret_values.update(_variants(value))
        ordered = sorted(_secret_values, key=len, reverse=True)  # longest first wins
        _secret_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        _rebuild_any()


def _rebuild_any() -> None:
    """The one-scan check of `redact`, the configured secrets included (under `_lock`)."""
    global _any_pattern, _redacted
    secrets = [_secret_pattern.pattern] if _secret_pattern is not None else []
    _any_pattern = re.compile("|".join(f"(?:{p})" for p in [*secrets, *_ALWAYS]))
    _redacted = {}


def clear_secrets() -> None:
    """Forget registered secrets (tests; a reload keeps old ones: they may still be in flight)."""
    global _secret_pattern
    with _lock:
        _secret_values.clear()
        _secret_pattern = None
        _rebuild_any()


def _variants(value: str) -> set[str]:
    # Credential files end with a newline; URLs carry the secret percent-encoded.
    forms = {value, value.strip(), quote(value.strip(), safe="")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def redact(text: str) -> str:
    """`text` without configured secrets, token-shaped strings or credential assignments."""
    cache = _redacted  # first: the pattern read next is at least as new as it
    known = cache.get(text)
    if known is not None:
        return known
    cleaned = text if _any_pattern.search(text) is None else _substitute(text)
    if len(text) <= _CACHED_TEXT_LENGTH:
        if len(cache) >= _REDACTED_CACHE_SIZE:
            cache.clear()
        cache[text] = cleaned
    return cleaned


def _substitute(text: str) -> str:
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


_secret_keys: dict[str, bool] = {}  # key -> whether its values are secret (keys recur)


def _is_secret_key(key: str) -> bool:
    secret = _secret_keys.get(key)
    if secret is None:
        secret = _SECRET_KEY.fullmatch(key) is not None
        if len(_secret_keys) < _REDACTED_CACHE_SIZE:
            _secret_keys[key] = secret
    return secret


def _redact_item(key: Any, value: Any) -> Any:
    if type(value) is str:  # the common case, first
        return REDACTED if value and isinstance(key, str) and _is_secret_key(key) else redact(value)
    is_secret_key = isinstance(key, str) and _is_secret_key(key)
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
    background: bool = False,
) -> None:
    """Route structlog and stdlib logging through one redacting handler on `stream` (stderr).

    `background`: lines are written by a thread of the handler's own, shortly after they are
    logged (the daemon: see `_SyncdHandler`); otherwise before the call that logs returns.

    `json=None` picks JSON lines when the stream is not a terminal (systemd, pipes).
    Safe to call again (on reload): it replaces its own handler.
    """
    out = stream if stream is not None else sys.stderr
    as_json = not _is_tty(out) if json is None else json
    add_secrets(secrets)

    global _handler, _min_level, _renderer
    stamp: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    _renderer = (
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
            _render,
        ],
    )
    handler = _SyncdHandler(out, background=background)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SyncdHandler)]:
        root.removeHandler(old)
        old.close()  # what it holds is written, its thread ends
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _min_level, _handler = root.level, handler
    for name in THIRD_PARTY_LOGGERS:
        # Libraries that brought their own handlers would bypass redaction.
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
    # Off then on: re-installs the hook even if something replaced showwarning since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)

    # Our own lines do not go through stdlib logging (a LogRecord made, then copied by the
    # formatter, a caller looked up): the same processors write them straight to the
    # handler's stream, at a third of the cost (issue 17: at the default level, info, two
    # lines per action). The chain is the same at every call, what changes (level, handler,
    # renderer) is read when a line is written, so loggers may keep it from their first use.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.StackInfoRenderer(),
            # Text first, then redact: a traceback carries exception messages and arguments.
            structlog.processors.format_exc_info,
            redact_event,
            *stamp,  # after: a level, a logger's name and the time hold no secret
            _render,
        ],
        logger_factory=_LineWriter.named,
        wrapper_class=_LevelFilteringLogger,
        cache_logger_on_first_use=True,
    )
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def in_background() -> bool:
    """Whether lines are written by the handler's own thread (as `syncd run` set it up)."""
    return _handler is not None and _handler.background


def enabled(level: int) -> bool:
    """Whether syncd's own lines at `level` are written (the configured log level)."""
    return level >= _min_level


def _render(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
    return _renderer(logger, method, event_dict)


class _LevelFilteringLogger(structlog.BoundLoggerBase):
    """syncd's structlog loggers: a line below the configured level costs one comparison,
    and `"... %s", value` is formatted as stdlib logging would."""

    def _line(self, level: int, method: str, event: Any, args: tuple[Any, ...], kw: Any) -> Any:
        if level < _min_level:
            return None
        if args:
            event = event % args
        return self._proxy_to_logger(method, event, **kw)

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._line(logging.DEBUG, "debug", event, args, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._line(logging.INFO, "info", event, args, kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._line(logging.WARNING, "warning", event, args, kw)

    warn = warning

    def error(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._line(logging.ERROR, "error", event, args, kw)

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        kw.setdefault("exc_info", True)
        return self._line(logging.ERROR, "error", event, args, kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._line(logging.CRITICAL, "critical", event, args, kw)


class _LineWriter:
    """Where a rendered line of ours goes: to the current handler, in order with the library
    records it writes (`_SyncdHandler.write_line`)."""

    __slots__ = ("name",)
    _writers: dict[str, _LineWriter] = {}

    def __init__(self, name: str) -> None:
        self.name = name  # structlog.stdlib.add_logger_name reads it

    @classmethod
    def named(cls, *args: Any) -> _LineWriter:
        name = str(args[0]) if args and args[0] else "syncd"
        writer = cls._writers.get(name)
        if writer is None:
            writer = cls._writers[name] = cls(name)
        return writer

    def msg(self, line: str) -> None:
        handler = _handler
        if handler is None or handler not in logging.root.handlers:  # taken off: as stdlib
            sys.stderr.write(line + "\n")  # logging's last resort does, to stderr
            return
        handler.write_line(line + handler.terminator, self.name)

    debug = info = warning = error = critical = exception = msg


def _line_record(name: str) -> logging.LogRecord:
    """A stand-in record for `Handler.handleError` (it reports a failed write to stderr)."""
    return logging.LogRecord(name, logging.ERROR, __file__, 0, "a log line", None, None)


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of each message; the plain one is enough."""
    event_dict.pop("color_message", None)
    return event_dict


# In the background (the daemon): how long a line may wait for the handler's writer thread,
# and how many lines wake it before that.
WRITE_DELAY_SECONDS = 0.05
WRITE_AT_LINES = 1000
# Lines that may wait while a write is stuck (journald not reading): past this, a thread
# that logs waits and writes, as it would with no handler thread, so memory stays bounded.
BACKLOG_LINES = 10_000


class _SyncdHandler(logging.StreamHandler):
    """Our handler, told apart from others so reconfiguring replaces only it.

    In the foreground (the default), a line is written before the call that logged it
    returns, unless another thread is writing: then that thread writes it with its next
    write. In the background (`syncd run`), the handler's own thread writes what was logged
    within `WRITE_DELAY_SECONDS`, many lines in one write: the threads doing syncd's work
    make no system call for a line, each of which handed the GIL to another thread and back
    (issue 17: at level info, one line per action took a tenth of the daemon's pace). What
    waits is written by `flush` (logging's own at exit, a reconfiguration) and `close`.
    In both, once `BACKLOG_LINES` wait behind a stuck write, a thread that logs waits for it:
    a stream nobody reads holds the loggers back, as it would without any of this, not
    memory."""

    def __init__(self, stream: TextIO, background: bool = False) -> None:
        super().__init__(stream)
        self._pending: list[tuple[str, str]] = []  # (text, logger name), in logging order
        self._writing = False  # a foreground thread is writing what is pending
        self._turn = threading.Lock()  # guards the above, held for no I/O
        self._out = threading.Lock()  # held while writing: one writer at a time
        self.background = background
        self._closed = False
        self._wake = threading.Event()  # the first line of a batch is pending
        self._full = threading.Event()  # enough lines are: write them now
        self._writer: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self.write_line(text, record.name)

    def write_line(self, text: str, name: str) -> None:
        with self._turn:
            self._pending.append((text, name))
            backlog = len(self._pending) >= BACKLOG_LINES
            if self.background and not self._closed:
                self._hand_to_writer(len(self._pending))
                if not backlog:
                    return
            elif self._writing and not backlog:  # the writing thread takes it next
                return
            elif not self._writing:
                self._writing = True
                backlog = False  # this thread writes, as any first writer
        if backlog:  # a write is stuck: wait for it, then write what waits
            self._write_pending()
            return
        try:
            self._write_pending()
        finally:
            with self._turn:
                self._writing = False
                left = bool(self._pending)
        if left:  # logged after this thread's last look, before it stopped writing
            self.flush()

    def _hand_to_writer(self, pending: int) -> None:
        """(Under `_turn`.) Start the writer thread on first use; wake it for a new batch."""
        if self._writer is None:
            self._writer = start_thread(self._write_later, "log-writer")
        if pending == 1:
            self._wake.set()
        elif pending >= WRITE_AT_LINES:
            self._full.set()

    def _write_later(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._full.wait(WRITE_DELAY_SECONDS)  # gather what follows the first line
            self._wake.clear()
            self._full.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._out:
            while True:
                with self._turn:
                    lines, self._pending = self._pending, []
                if not lines:
                    return
                self._write_out(lines)

    def _write_out(self, lines: list[tuple[str, str]]) -> None:
        # (Under `_out`.) The stream is flushed here, not by `StreamHandler.flush`: that takes
        # the handler's lock, which logging holds when it calls `emit`, which may wait for
        # `_out`; taking them in both orders could deadlock.
        try:
            self.stream.write("".join(text for text, _ in lines))
            self.stream.flush()
        except Exception:  # a closed or broken stream: as logging would, never raise
            self.handleError(_line_record(lines[0][1]))

    def flush(self) -> None:
        """Write what waits, then flush the stream."""
        self._write_pending()
        super().flush()

    def close(self) -> None:
        with self._turn:
            self._closed = True  # lines logged from now on are written in the foreground
        self._wake.set()
        self._full.set()
        self.flush()
        super().close()


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
