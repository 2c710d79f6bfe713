"""No secret reaches the log stream: structlog, library loggers, exceptions, tracebacks."""

from __future__ import annotations

import io
import json
import logging
import random
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from syncd import logs
from syncd.logs import REDACTED, add_secrets, clear_secrets, configure_logging, redact

GITHUB_CLASSIC = "ghp_" + "A1b2C3d4E5" * 4
TOKEN_SHAPED = [
    GITHUB_CLASSIC,
    "gho_" + "z9Y8x7W6v5" * 4,
    "github_pat_11ABCDEFG0" + "abcdefghij_" * 7,
    "pat-na1-1b2c3d4e-aaaa-bbbb-cccc-123456789abc",
    "pat-eu1-1b2c3d4e-aaaa-bbbb-cccc-123456789abc",
    "ATATT3xFfGF0" + "Zq-_9" * 30 + "=1A2B3C4D",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "patAbCdEfGh123456." + "0123456789abcdef" * 4,
    "keyAbc123DEFghij4",
]
NORMAL_TEXT = [
    "deal 123: dealstage closedwon -> contractadmin",
    "Basic information about the keyboard key",
    "missing bearer token in request",
    "poll_interval=30 max_tokens=5 retry in 2.5s",
    "New Hub - Request deployment: Ocean",
    "created issue 2i2c-org/infrastructure#42 with labels [hub, new-hub]",
    "patience, the key is in the lock",
]


class Client:
    """A client whose repr carries its token, like many SDK objects do."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"Client(base_url='https://api.example', token={self.token!r})"


def call_api(client: Client) -> None:
    raise RuntimeError(f"401 Unauthorized calling {client!r}")


@pytest.fixture
def canary() -> str:
    return f"s3cr3t-canary-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)
    structlog.reset_defaults()
    clear_secrets()


def emit_everything(canary: str) -> None:
    """Log the canary every way the daemon and its libraries could."""
    log = structlog.get_logger("syncd.test")
    log.info(f"message with {canary}")
    log.info("structured", token=canary, note=f"value {canary}", nested={"a": [canary, (canary,)]})
    log.warning("object value", client=Client(canary))
    try:
        call_api(Client(canary))
    except RuntimeError:
        log.exception("call failed")

    library = logging.getLogger("urllib3.connectionpool")
    library.debug("%s %s", "GET", f"https://api.example/x?access_token={canary}")
    library.warning("header dump", extra={"auth_header": f"Bearer {canary}"})
    try:
        call_api(Client(canary))
    except RuntimeError:
        logging.getLogger("jira").error("jira said no: %s", canary, exc_info=True)
    try:
        call_api(Client(canary))
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the registry would hide a repeat in a later test
        warnings.warn(f"insecure request to https://x/?key={canary}", stacklevel=1)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_canary_secret_never_reaches_the_stream(capfd, canary: str, as_json: bool) -> None:
    # A library that installed its own handler before us would bypass redaction.
    logging.getLogger("github").addHandler(logging.StreamHandler(sys.stderr))
    configure_logging("DEBUG", json=as_json, secrets=[canary])
    emit_everything(canary)
    logging.getLogger("github").info("github token %s", canary)

    out, err = capfd.readouterr()
    assert canary not in out + err
    # The lines were written, only the secret is gone.
    for expected in (
        "call failed",
        "401 Unauthorized",
        "Traceback",
        "jira said no",
        "uncaught exception",
        "insecure request",
        "github token",
    ):
        assert expected in err, expected
    assert err.count(REDACTED) >= 12
    if as_json:
        records = [json.loads(line) for line in err.splitlines() if line.strip()]
        assert {r["logger"] for r in records} >= {"syncd.test", "urllib3.connectionpool", "jira"}
        exceptions = [r["exception"] for r in records if "exception" in r]
        assert len(exceptions) == 3 and all("RuntimeError" in e for e in exceptions)


def test_defaults_to_json_off_a_terminal_and_console_on_one(capfd) -> None:
    configure_logging("INFO")
    structlog.get_logger("syncd.test").info("hello", n=1)
    record = json.loads(capfd.readouterr().err)
    assert record["event"] == "hello" and record["n"] == 1 and record["level"] == "info"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    configure_logging("INFO", stream=terminal)
    structlog.get_logger("syncd.test").info("hello", n=1)
    assert "hello" in terminal.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(terminal.getvalue())


def test_reconfiguring_keeps_one_handler(capfd) -> None:
    configure_logging("INFO", json=True)
    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").info("started")
    assert len(capfd.readouterr().err.splitlines()) == 1


def test_level_filters_structlog_and_libraries(capfd) -> None:
    configure_logging("WARNING", json=True)
    structlog.get_logger("syncd.test").info("quiet")
    logging.getLogger("requests").info("quiet too")
    structlog.get_logger("syncd.test").warning("loud")
    lines = capfd.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["loud"]


def test_secrets_added_later_are_redacted(capfd, canary: str) -> None:
    configure_logging("INFO", json=True)
    add_secrets([canary])  # e.g. after a reload loaded a new connector
    structlog.get_logger("syncd.test").info(f"now {canary}")
    assert canary not in capfd.readouterr().err


@pytest.mark.parametrize("token", TOKEN_SHAPED)
def test_token_shaped_strings_are_redacted(token: str) -> None:
    cleaned = redact(f"calling api with {token} now")
    assert token not in cleaned
    assert cleaned == f"calling api with {REDACTED} now"


@pytest.mark.parametrize(
    ("text", "secret_part"),
    [
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("{'Authorization': 'token abc123xyz', 'Accept': 'json'}", "abc123xyz"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("sent Basic dXNlcjpzM2NyZXQ= header", "dXNlcjpzM2NyZXQ="),
        ("GET /x?access_token=abcdef123&page=2", "abcdef123"),
        ('{"password": "hunter2", "user": "bob"}', "hunter2"),
        ("webhook_secret=s3cr3tvalue", "s3cr3tvalue"),
    ],
)
def test_credentials_in_headers_and_assignments(text: str, secret_part: str) -> None:
    cleaned = redact(text)
    assert secret_part not in cleaned
    assert REDACTED in cleaned


def test_assignment_keeps_the_rest_of_the_text() -> None:
    assert redact("GET /x?access_token=abc123&page=2") == f"GET /x?access_token={REDACTED}&page=2"
    assert redact('{"password": "hunter2", "user": "bob"}') == (
        f'{{"password": "{REDACTED}", "user": "bob"}}'
    )


@pytest.mark.parametrize("text", NORMAL_TEXT)
def test_normal_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_configured_secret_variants(canary: str) -> None:
    add_secrets([f"{canary}/p@ss\n"])  # as read from a credential file
    assert redact(f"x {canary}/p@ss y") == f"x {REDACTED} y"
    assert redact(f"url?pw={canary}%2Fp%40ss") == f"url?pw={REDACTED}"


def test_short_values_are_not_registered() -> None:
    # Blanking every "abc" would destroy the logs; secrets are never this short.
    add_secrets(["abc", ""])
    assert redact("abc cab") == "abc cab"


def test_redact_value_recurses_and_keeps_types(canary: str) -> None:
    add_secrets([canary])
    value = {
        "list": [canary, 3],
        "tuple": (canary,),
        "bytes": canary.encode(),
        "obj": Client(canary),
        "api_key": "whatever-it-looks-like",
        "token_count": 7,
        "plain": "fine",
    }
    cleaned = logs.redact_value(value)
    assert canary not in repr(cleaned)
    assert cleaned["list"] == [REDACTED, 3]
    assert cleaned["tuple"] == (REDACTED,)
    assert cleaned["api_key"] == REDACTED
    assert cleaned["token_count"] == 7
    assert cleaned["plain"] == "fine"
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    assert logs.redact_value(moment) is moment  # nothing secret in its repr: kept as is


def test_uncaught_exception_in_a_thread_is_redacted(capfd, canary: str) -> None:
    configure_logging("INFO", json=True, secrets=[canary])
    worker = threading.Thread(target=call_api, args=(Client(canary),), name="poller")
    worker.start()
    worker.join(timeout=5)
    record = json.loads(capfd.readouterr().err)
    assert record["event"] == "uncaught exception in thread poller"
    assert "401 Unauthorized" in record["exception"]
    assert canary not in json.dumps(record)


# Pieces of texts for the check below: each of redact's patterns, near misses of them, and
# ordinary words, glued in random orders.
FRAGMENTS = [
    *TOKEN_SHAPED,
    *NORMAL_TEXT,
    "Authorization: ",
    "proxy-authorization='x y'",
    "AUTHORIZATION",
    "access_token=",
    '"password": "hunter2"',
    "api-key:",
    "apikey",
    "Bearer ",
    "bearer",
    "Basic dXNlcjpzM2NyZXQ=",
    "Basic aGVsbG8=",
    "Basic ",
    "ghp_",
    "pat-na1-",
    "key",
    "token",
    " ",
    "=",
    ":",
    "'",
    '"',
    "\n",
    "abc123XYZ",
    "x" * 40,
]


def test_the_one_scan_lets_through_only_texts_redaction_leaves_alone(canary: str) -> None:
    """`redact` skips its substitutions when one combined scan finds nothing; that scan
    must find something wherever a substitution would change the text."""
    add_secrets([canary])
    rng = random.Random(17)
    pieces = [*FRAGMENTS, canary, canary[:10]]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        assert redact(text) == logs._substitute(text), text


def test_a_text_seen_before_its_secret_was_registered_is_redacted_after(canary: str) -> None:
    text = f"connecting with {canary}"
    assert redact(text) == text  # not a secret yet, and remembered as clean
    add_secrets([canary])
    assert redact(text) == f"connecting with {REDACTED}"
    structured = logs.redact_event(None, "info", {"note": text})
    assert structured == {"note": f"connecting with {REDACTED}"}


def test_a_logger_used_before_a_reconfiguration_follows_it(capfd) -> None:
    """Loggers keep their processors from their first use (a reload reconfigures): the
    level, the handler and the rendering still come from the latest configuration."""
    log = structlog.get_logger("syncd.test")
    configure_logging("INFO", json=True)
    log.info("one", n=1)
    configure_logging("WARNING", json=True)
    log.info("two")
    log.warning("three")
    configure_logging("INFO", json=False)
    log.info("four", n=4)
    lines = capfd.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines[:2]] == ["one", "three"]
    assert len(lines) == 3 and "four" in lines[2] and not lines[2].startswith("{")


def test_lines_go_to_the_configured_stream_and_not_once_it_is_taken_off(capfd) -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    log = structlog.get_logger("syncd.test")
    log.info("kept", n=1)
    logging.getLogger("urllib3").warning("library line")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, logs._SyncdHandler)]
    log.warning("after")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["event"], r["logger"]) for r in records] == [
        ("kept", "syncd.test"),
        ("library line", "urllib3"),
    ]
    assert "after" in capfd.readouterr().err  # stderr, as stdlib logging's last resort


def test_printf_style_arguments_and_exceptions_in_our_lines(capfd, canary: str) -> None:
    configure_logging("INFO", json=True, secrets=[canary])
    log = structlog.get_logger("syncd.test")
    log.info("polled %d deals from %s", 3, "hubspot")
    try:
        call_api(Client(canary))
    except RuntimeError:
        log.exception("call failed", source="github")
    first, second = (json.loads(line) for line in capfd.readouterr().err.splitlines())
    assert first["event"] == "polled 3 deals from hubspot" and first["level"] == "info"
    assert second["level"] == "error" and second["source"] == "github"
    assert "RuntimeError: 401 Unauthorized" in second["exception"]
    assert canary not in json.dumps(second)


class SlowStream(io.StringIO):
    """A stream whose writes take a while (a pipe to a busy journald), counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        time.sleep(0.002)  # other threads run meanwhile, as in a real write
        return super().write(text)


def test_lines_logged_during_a_write_are_written_together_each_once_in_order() -> None:
    stream = SlowStream()
    configure_logging("INFO", json=True, stream=stream)
    log = structlog.get_logger("syncd.test")
    log.info("alone")
    assert json.loads(stream.getvalue())["event"] == "alone"  # written before info returned

    def worker(n: int) -> None:
        for i in range(50):
            log.info("line", worker=n, i=i)
            if i % 10 == 0:
                logging.getLogger("urllib3").warning("library %d %d", n, i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    records = [json.loads(line) for line in stream.getvalue().splitlines()[1:]]
    ours = [(r["worker"], r["i"]) for r in records if r["event"] == "line"]
    assert sorted(ours) == [(n, i) for n in range(8) for i in range(50)]  # each once
    for n in range(8):
        assert [i for w, i in ours if w == n] == list(range(50))  # in each thread's order
    assert sum(r["logger"] == "urllib3" for r in records) == 8 * 5
    assert stream.writes < len(records) / 2  # lines that waited went out together


def test_in_the_background_lines_are_written_soon_together_and_all_by_flush() -> None:
    stream = SlowStream()
    configure_logging("INFO", json=True, stream=stream, background=True)
    assert logs.in_background()
    log = structlog.get_logger("syncd.test")
    for i in range(200):
        log.info("line", i=i)
        if i % 50 == 0:
            logging.getLogger("urllib3").warning("library %d", i)
    deadline = time.monotonic() + 5  # written by the handler's thread, not by the caller
    while stream.getvalue().count("\n") < 204 and time.monotonic() < deadline:
        time.sleep(0.01)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["i"] for r in records if r["event"] == "line"] == list(range(200))
    assert sum(r["logger"] == "urllib3" for r in records) == 4
    assert stream.writes <= 10  # many lines per write (one each would be 204)

    log.warning("last words")  # then at once, as logging does at exit
    logging.getLogger().handlers[-1].flush()
    assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "last words"


def test_reconfiguring_writes_what_the_old_handler_held() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", json=True, stream=first, background=True)
    log = structlog.get_logger("syncd.test")
    log.info("to the first")
    configure_logging("INFO", json=True, stream=second)
    log.info("to the second")
    assert [json.loads(x)["event"] for x in first.getvalue().splitlines()] == ["to the first"]
    assert [json.loads(x)["event"] for x in second.getvalue().splitlines()] == ["to the second"]
    assert not logs.in_background()


def test_the_daemon_logs_in_the_background_and_writes_all_at_exit(tmp_path) -> None:
    """A process that logs and ends (logging's shutdown at exit) loses no line."""
    script = tmp_path / "logs_and_exits.py"
    script.write_text(
        "import structlog\n"
        "from syncd.logs import configure_logging\n"
        "configure_logging('INFO', json=True, background=True)\n"
        "log = structlog.get_logger('syncd.test')\n"
        "for i in range(500):\n"
        "    log.info('line', i=i)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert [json.loads(x)["i"] for x in done.stderr.splitlines()] == list(range(500))


def test_flushing_while_libraries_log_does_not_deadlock() -> None:
    """logging holds the handler's lock around `emit`; a flush from another thread (as
    logging's shutdown, or a reconfiguration) must not wait for it while holding what
    `emit` waits for."""
    stream = SlowStream()
    configure_logging("INFO", json=True, stream=stream)
    handler = logging.getLogger().handlers[-1]
    stop = threading.Event()

    def library() -> None:
        while not stop.is_set():
            logging.getLogger("urllib3").warning("library line")

    def flusher() -> None:
        while not stop.is_set():
            handler.flush()

    threads = [threading.Thread(target=t, daemon=True) for t in (library, library, flusher)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


class StuckStream(io.StringIO):
    """A stream whose writes wait until released (journald not reading its socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(timeout=30)
        return super().write(text)


@pytest.mark.parametrize("background", [True, False], ids=["background", "foreground"])
def test_a_stuck_stream_holds_back_the_loggers_not_memory(monkeypatch, background) -> None:
    monkeypatch.setattr(logs, "BACKLOG_LINES", 50)
    stream = StuckStream()
    configure_logging("INFO", json=True, stream=stream, background=background)
    log = structlog.get_logger("syncd.test")
    logged = []

    def worker(n: int) -> None:
        for i in range(100):
            log.info("line", worker=n, i=i)
            logged.append((n, i))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    handler = logging.getLogger().handlers[-1]
    # The loggers wait once that many lines wait (each adds its own line first).
    assert len(handler._pending) <= 50 + len(threads)
    assert len(logged) < 300
    stream.release.set()
    for thread in threads:
        thread.join(timeout=10)
    handler.flush()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((r["worker"], r["i"]) for r in records) == sorted(logged)
    assert len(records) == 300
