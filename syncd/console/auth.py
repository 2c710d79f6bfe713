"""The console's token: read from `[console] token_file`, or made once in the state folder.

A request is let in with `Authorization: Bearer <token>`, or with the session cookie the
login form sets (HttpOnly, SameSite=Strict). The cookie and the CSRF field hold values
derived from the token (HMAC), never the token itself; changing the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import structlog

from syncd.config import Config
from syncd.errors import ConfigError

log = structlog.get_logger("syncd.console")
TOKEN_FILE_NAME = "console-token"
COOKIE = "syncd_console"


def token_path(config: Config) -> Path:
    if config.console.token_file:
        return config.resolve(config.console.token_file)
    return config.state_dir / TOKEN_FILE_NAME


def load_or_create_token(config: Config) -> str:
    """The token; made (0600) at the first start when no token_file is configured. The log
    names the file, never the token."""
    path = token_path(config)
    if config.console.token_file:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                [f"[console] token_file: cannot read {path}: {exc.strerror}"]
            ) from None
        if len(token) < 16:
            raise ConfigError([f"[console] token_file: {path} holds fewer than 16 characters"])
        return token
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    log.info("console.token_created", path=str(path))
    return token


class Keys:
    """What the token lets the console derive: the session cookie and the CSRF field."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.session = self._derive("session")
        self.csrf = self._derive("csrf")

    def _derive(self, purpose: str) -> str:
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    def session_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.session.encode())

    def csrf_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.csrf.encode())
